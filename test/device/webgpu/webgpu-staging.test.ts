/**
 * WebGpuStaging: bytes in with writeBuffer, out through a mapped staging buffer.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { DmaBufError, InvalidArgumentError } from '../../../src/base/errors.js';
import { requestWebGpuDevice, type WebGpuHandle } from '../../../src/device/webgpu/webgpu-adapter.js';
import { WebGpuRing } from '../../../src/device/webgpu/webgpu-ring.js';
import { WebGpuStaging } from '../../../src/device/webgpu/webgpu-staging.js';
import { VRAM_USAGE } from '../../../src/device/webgpu/webgpu-vram-mgr.js';
import { firstDifference, pattern, webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();

describe('WebGpuStaging', { skip }, () => {
  let handle: WebGpuHandle;
  let device: GPUDevice;
  before(async () => {
    handle = await requestWebGpuDevice();
    device = handle.device;
  });
  after(async () => {
    device.destroy();
    await device.lost;
    handle.release();
  });

  it('sanity: upload then download returns the bytes', async () => {
    const staging = new WebGpuStaging(new WebGpuRing(device));
    const buffer = device.createBuffer({ size: 64 << 10, usage: VRAM_USAGE });
    const data = pattern(64 << 10, 1);
    staging.upload(buffer, 0, data);
    const out = new Uint8Array(64 << 10);
    await staging.download(buffer, 0, out);
    assert.equal(firstDifference(out, data), -1, 'same bytes');
    assert.equal(staging.stats().bytesUp, 64 << 10, 'bytes up');
    assert.equal(staging.stats().bytesDown, 64 << 10, 'bytes down');
    buffer.destroy();
  });

  it('uploads from a view over a SharedArrayBuffer (bounced: Dawn crashes on those)', async () => {
    const staging = new WebGpuStaging(new WebGpuRing(device));
    const buffer = device.createBuffer({ size: 8192, usage: VRAM_USAGE });
    const shared = new Uint8Array(new SharedArrayBuffer(16384));
    shared.set(pattern(16384, 2));
    staging.upload(buffer, 0, shared.subarray(4096, 4096 + 8192));
    const out = new Uint8Array(8192);
    await staging.download(buffer, 0, out);
    assert.equal(firstDifference(out, shared.subarray(4096, 4096 + 8192)), -1, 'same bytes');
    buffer.destroy();
  });

  it('reads and writes at offsets, and sees earlier submissions', async () => {
    const ring = new WebGpuRing(device);
    const staging = new WebGpuStaging(ring);
    const buffer = device.createBuffer({ size: 4096, usage: VRAM_USAGE });
    staging.upload(buffer, 0, new Uint8Array(4096).fill(1));
    const encoder = device.createCommandEncoder();
    encoder.clearBuffer(buffer, 1024, 1024);
    ring.submit([encoder.finish()]);
    staging.upload(buffer, 3072, new Uint8Array(8).fill(9));
    const out = new Uint8Array(3072);
    await staging.download(buffer, 1020, out);
    assert.deepEqual(
      [out[0], out[3], out[4], out[1027], out[1028], out[2052], out[2059], out[2060]],
      [1, 1, 0, 0, 1, 9, 9, 1],
    );
    buffer.destroy();
  });

  it('reuses pooled staging buffers of the same size, within the pool cap', async () => {
    const staging = new WebGpuStaging(new WebGpuRing(device), { maxPooledBytes: 8192 });
    const buffer = device.createBuffer({ size: 8192, usage: VRAM_USAGE });
    for (let i = 0; i < 5; i++) await staging.download(buffer, 0, new Uint8Array(4096));
    assert.equal(staging.stats().created, 1, 'one staging buffer created');
    assert.equal(staging.stats().reused, 4, 'reused four times');
    await Promise.all([0, 1, 2].map(() => staging.download(buffer, 0, new Uint8Array(4096))));
    assert.ok(staging.stats().pooledBytes <= 8192, `pool within its cap (${staging.stats().pooledBytes})`);
    staging.trim();
    assert.equal(staging.stats().pooledBytes, 0, 'trimmed');
    buffer.destroy();
  });

  it('rejects unaligned offsets and sizes with a typed error', async () => {
    const staging = new WebGpuStaging(new WebGpuRing(device));
    const buffer = device.createBuffer({ size: 4096, usage: VRAM_USAGE });
    assert.throws(() => staging.upload(buffer, 2, new Uint8Array(4)), InvalidArgumentError);
    assert.throws(() => staging.upload(buffer, 0, new Uint8Array(3)), InvalidArgumentError);
    await assert.rejects(staging.download(buffer, 1, new Uint8Array(4)), InvalidArgumentError);
    assert.throws(() => new WebGpuStaging(new WebGpuRing(device), { maxPooledBytes: -1 }), InvalidArgumentError);
    buffer.destroy();
  });

  it('a download of a destroyed buffer rejects with the copy error instead of returning stale bytes', async () => {
    const staging = new WebGpuStaging(new WebGpuRing(device));
    const buffer = device.createBuffer({ size: 4096, usage: VRAM_USAGE });
    buffer.destroy();
    await assert.rejects(staging.download(buffer, 0, new Uint8Array(4096)), (e: unknown) => {
      assert.ok(e instanceof DmaBufError && e.code === 'EIO', `EIO, got ${String(e)}`);
      return true;
    });
  });

  it('on a lost device, downloads and uploads reject with the loss', async () => {
    const own = await requestWebGpuDevice();
    const ring = new WebGpuRing(own.device);
    own.device.lost.then(() => ring.forceCompletion(new DmaBufError('ENODEV', 'lost in test')));
    const staging = new WebGpuStaging(ring);
    const buffer = own.device.createBuffer({ size: 4096, usage: VRAM_USAGE });
    own.device.destroy();
    await own.device.lost;
    await assert.rejects(staging.download(buffer, 0, new Uint8Array(4096)), /lost in test/);
    assert.throws(() => staging.upload(buffer, 0, new Uint8Array(4)), /lost in test/);
    own.release();
  });
});
