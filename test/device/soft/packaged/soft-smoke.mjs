// The soft device from the built package, the same program in Node (dmabuf/node) and in
// Chromium (dist/index.js + dist/soft.js, Web Workers): see soft-packaged.test.ts.
// `m` is the library, `kernelsUrl` the user kernel module, `print` where lines go.
export const SOFT_SMOKE_EXPECTED = [
  'saxpy: 12 24 36 48',
  'kernels: boom,invert,spin',
  'invert: 255 254 253 252',
  'order: 200 jobs on one ring in order',
  'boom: EIO, next job fine',
  'hang: ETIMEDOUT, 1 reset, next job fine',
  'destroy: ENODEV after destroy',
];

export async function softSmoke(m, kernelsUrl, print) {
  const device = new m.SoftDevice({ engines: { compute: 2, gfx: 1 }, hangTimeoutMs: 400 });
  try {
    const memory = device.map(new SharedArrayBuffer(64));
    const f = new Float32Array(memory.buffer, 0, 8);
    f.set([1, 2, 3, 4, 10, 20, 30, 40]);
    await device.submit('compute', 'saxpy', { a: 2, x: memory.range(0, 16), y: memory.range(16, 16) }).wait();
    print(`saxpy: ${[...f.subarray(4, 8)].join(' ')}`);

    const names = await device.registerKernels(kernelsUrl);
    print(`kernels: ${names.join(',')}`);
    const bytes = new Uint8Array(memory.buffer, 32, 8);
    bytes.set([0, 1, 2, 3]);
    await device.submit('gfx', 'invert', { src: memory.range(32, 4), dst: memory.range(36, 4) }).wait();
    print(`invert: ${[...bytes.subarray(4, 8)].join(' ')}`);

    const log = device.map(new SharedArrayBuffer(4 * 201));
    const fences = [];
    for (let i = 1; i <= 200; i++)
      fences.push(device.submit('compute', 'fill', { dst: log.range(4 * i, 4), value: i }, { ring: 1 }));
    await fences[199].wait();
    const words = new Uint8Array(log.buffer);
    const inOrder = fences.every((fence, i) => fence.signaledFlag && words[4 * (i + 1)] === ((i + 1) & 0xff));
    print(`order: 200 jobs on one ring ${inOrder ? 'in order' : 'OUT OF ORDER'}`);

    const boom = device.submit('gfx', 'boom');
    const after = device.submit('gfx', 'noop');
    await after.wait();
    print(`boom: ${boom.error?.code}, next job ${after.error === undefined ? 'fine' : after.error.code}`);

    const hung = device.submit('gfx', 'spin', { ms: 1e12 });
    const next = device.submit('gfx', 'noop');
    await next.wait();
    print(
      `hang: ${hung.error?.code}, ${device.resets.length} reset, next ` +
        `job ${next.error === undefined ? 'fine' : next.error.code}`,
    );
  } finally {
    await device.destroy();
  }
  try {
    device.submit('gfx', 'noop');
    print('destroy: submit after destroy did not throw');
  } catch (err) {
    print(`destroy: ${err.code} after destroy`);
  }
}
