// A minimal PNG encoder (8-bit grey or RGB, no filtering, zlib from node) and a picture of an
// image batch as a grid, so synthesised transfer sets can be looked at without any image library.
import { deflateSync } from 'node:zlib';

const CRC_TABLE = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const v of b) c = CRC_TABLE[(c ^ v) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** PNG bytes of an 8-bit image, rows top to bottom, channels interleaved (1: grey, 3: RGB). */
export function encodePng(width: number, height: number, channels: 1 | 3, pixels: Uint8Array): Buffer {
  if (pixels.length !== width * height * channels) throw new RangeError(`encodePng: ${pixels.length} bytes for ${width}×${height}×${channels}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = channels === 1 ? 0 : 2;
  const stride = width * channels;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) Buffer.from(pixels.subarray(y * stride, (y + 1) * stride)).copy(raw, y * (stride + 1) + 1); // filter byte 0
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

/**
 * A PNG of n images [n, C, H, W] (C = 1 or 3, float values in any range) in a grid of `cols`
 * columns with a 2-pixel border, each image scaled to its own min..max (torchvision's
 * save_image(normalize=True, scale_each=True), as DeepInversion's authors save theirs).
 */
export function imageGridPng(x: Float32Array, shape: readonly number[], cols = 10): Buffer {
  const [n, c, h, w] = shape as [number, number, number, number];
  if (shape.length !== 4 || (c !== 1 && c !== 3)) throw new RangeError(`imageGridPng: images must be [n, 1 or 3, H, W], got [${shape.join(', ')}]`);
  const rows = Math.ceil(n / cols), pad = 2;
  const W = cols * (w + pad) + pad, H = rows * (h + pad) + pad;
  const out = new Uint8Array(W * H * c);
  const per = c * h * w;
  for (let i = 0; i < n; i++) {
    let lo = Infinity, hi = -Infinity;
    for (let j = 0; j < per; j++) { const v = x[i * per + j]!; if (v < lo) lo = v; if (v > hi) hi = v; }
    const scale = hi > lo ? 255 / (hi - lo) : 0;
    const ox = pad + (i % cols) * (w + pad), oy = pad + Math.floor(i / cols) * (h + pad);
    for (let ch = 0; ch < c; ch++) {
      for (let yy = 0; yy < h; yy++) {
        for (let xx = 0; xx < w; xx++) {
          out[((oy + yy) * W + ox + xx) * c + ch] = Math.round((x[i * per + ch * h * w + yy * w + xx]! - lo) * scale);
        }
      }
    }
  }
  return encodePng(W, H, c, out);
}
