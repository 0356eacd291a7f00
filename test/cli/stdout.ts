// Runs a CLI command in this process and returns what it printed on stdout (e.g. `kdistill eval`'s
// table), without letting it reach the test runner's output; stdout is restored even when it throws.
export async function printedBy<T>(command: () => T | Promise<T>): Promise<{ value: T; printed: string }> {
  let printed = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => { printed += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'); return true; }) as typeof process.stdout.write;
  try {
    const value = await command();
    return { value, printed };
  } finally {
    process.stdout.write = write;
  }
}
