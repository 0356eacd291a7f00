// Errors: shape, dtype and device mistakes surface as JavaScript Errors carrying libtorch's own
// message (no C++ backtrace), and the process keeps working afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, F, tidy, call } from '../../src/index.js';

function throwsLibtorch(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, 'a JavaScript Error');
    assert.match(e.message, message);
    assert.doesNotMatch(e.message, /Exception raised from|frame #\d/, 'no C++ backtrace in the message');
    return true;
  });
}

test('shape mistakes', () => {
  tidy(() => {
    throwsLibtorch(() => torch.ones([2, 3]).matmul(torch.ones([4, 5])), /mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)/);
    throwsLibtorch(() => torch.ones([2, 3]).add(torch.ones([2, 4])),
      /The size of tensor a \(3\) must match the size of tensor b \(4\) at non-singleton dimension 1/);
    throwsLibtorch(() => torch.ones([2, 3]).t().view(6), /view size is not compatible with input tensor's size and stride/);
    throwsLibtorch(() => torch.ones([2, 3]).reshape(4, 2), /shape '\[4, 2\]' is invalid for input of size 6/);
    throwsLibtorch(() => F.conv2d(torch.ones([1, 3, 4, 4]), torch.ones([2, 2, 3, 3])), /expected input\[1, 3, 4, 4\] to have 2 channels, but got 3/);
    throwsLibtorch(() => torch.cat([torch.ones([2, 3]), torch.ones([2, 4])], 0), /Sizes of tensors must match/);
    throwsLibtorch(() => torch.ones([2, 3]).bmm(torch.ones([2, 3])), /batch1 must be a 3D tensor/);
    throwsLibtorch(() => F.embedding(torch.tensor([5], { dtype: 'int64' }), torch.ones([3, 2])), /index out of range/);
  });
});

test('dtype mistakes', () => {
  tidy(() => {
    throwsLibtorch(() => torch.ones([2, 3]).matmul(torch.ones([3, 2], { dtype: 'float64' })), /expected scalar type Float but found Double/);
    throwsLibtorch(() => torch.ones([3]).indexSelect(0, torch.ones([1])), /Expected dtype int32 or int64 for index/);
    throwsLibtorch(() => F.crossEntropy(torch.ones([2, 3]), torch.ones([2])), /expected scalar type Long but found Float/);
    throwsLibtorch(() => torch.tensor([true]).sub(torch.tensor([true])), /Subtraction, the `-` operator, with two bool tensors is not supported/);
    throwsLibtorch(() => torch.tensor([1, 2], { dtype: 'int64' }).requiresGrad_(true),
      /Only Tensors of floating point and complex dtype can require gradients/);
  });
});

test('device mistakes', () => {
  tidy(() => {
    throwsLibtorch(() => torch.ones([2]).to('cuda'), /cuda/i);
    throwsLibtorch(() => torch.ones([2]).to('cuda:0'), /cuda/i);
    throwsLibtorch(() => call('ones', [2], null, null, 'cuda'), /cuda/i);
  });
});

test('autograd and argument mistakes', () => {
  tidy(() => {
    throwsLibtorch(() => torch.ones([2]).sum().backward(), /does not require grad and does not have a grad_fn/);
    throwsLibtorch(() => torch.ones([2], { requiresGrad: true }).mul(2).backward(), /grad can be implicitly created only for scalar outputs/);
    assert.throws(() => call('add.Tensor', torch.ones([2]), 'a'), { name: 'TypeError', message: /argument 'other' must be a tensor/ });
    assert.throws(() => call('nonexistent_op', torch.ones([2])), /unknown operator aten::nonexistent_op/);
    assert.throws(() => call('linear'), /argument 'input' is required/);
    assert.throws(() => torch.ones([2]).item(), /exactly 1/);
    assert.throws(() => torch.tensor([1, 2], { dtype: 'nope' as 'float32' }), /unknown dtype 'nope'/);
    assert.throws(() => F.crossEntropy(torch.ones([2, 3]), torch.tensor([0, 1], { dtype: 'int64' }), { reduction: 'avg' as 'mean' }),
      /reduction must be/);
  });
});

test('the process keeps working after errors', () => {
  for (let i = 0; i < 100; i++) {
    assert.throws(() => tidy(() => torch.ones([2, 3]).matmul(torch.ones([4, 5]))));
  }
  assert.equal(tidy(() => torch.ones([2, 3]).matmul(torch.ones([3, 5])).sum().item()), 30);
});
