// WebGPU: buffer objects in real GPUBuffers under a 128 KiB budget. Six 32 KiB vectors do not
// fit, so TTM evicts the least recently used ones to system memory (through a staging buffer)
// and restores them (writeBuffer) when a submission needs them. saxpy runs in WGSL on the GPU
// (Dawn on SwiftShader here), each submission is a hardware fence, and every result is checked
// against the JavaScript reference.
import { TtmMemType } from 'dmabuf';
import { WebGpuDevice, saxpyReference } from 'dmabuf/webgpu';

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';

await using gpu = await WebGpuDevice.create({ budgetBytes: 128 << 10, name: 'example' });
console.log(`adapter: ${gpu.adapterName}, VRAM budget ${gpu.budgetBytes >> 10} KiB`);

const n = 8192; // 32 KiB of f32
const vectors = [];
for (let i = 0; i < 3; i++) {
  const x = new Float32Array(n).map((_, j) => (i + j) % 9);
  const y = new Float32Array(n).map((_, j) => (i * j) % 5);
  const bx = await gpu.createBuffer({ size: n * 4, name: `x${i}` });
  const by = await gpu.createBuffer({ size: n * 4, name: `y${i}` });
  await gpu.write(bx, x);
  await gpu.write(by, y);
  vectors.push({ x, y, bx, by, a: i + 1 });
}
const where = (bo: { resource: { memType: number } | null }): string =>
  bo.resource?.memType === TtmMemType.VRAM ? 'VRAM' : 'System';
console.log(`after creating 192 KiB: ${vectors.map((v) => `${v.bx.name} ${where(v.bx)}`).join(', ')}`);

for (const { bx, by, a } of vectors) {
  const fence = await gpu.submit([{ bo: bx }, { bo: by, write: true }], (encoder, binding) =>
    gpu.kernels.saxpy(encoder, { a, x: binding(bx), y: binding(by), n }),
  );
  const timeline = fence.timelineName; // reported while pending (a signalled fence drops it, as in the kernel)
  await fence.wait();
  console.log(`saxpy a=${a}: fence ${fence.seqno} on ${timeline}: ${fence.status}`);
}

let wrong = 0;
for (const { x, y, by, a } of vectors) {
  const got = new Float32Array((await gpu.read(by)).buffer);
  const want = saxpyReference(a, x, y);
  for (let j = 0; j < n; j++) if (got[j] !== want[j]) wrong++;
}
const stats = gpu.ttm.stats();
console.log(
  `results: ${wrong === 0 ? 'all correct' : `${wrong} wrong`}; evictions ${stats.evictions}, ` +
    `peak VRAM ${gpu.vram.stats().peakBytes >> 10} of ${gpu.budgetBytes >> 10} KiB`,
);
for (const { bx, by } of vectors) {
  bx.put();
  by.put();
}
if (wrong !== 0) process.exitCode = 1;
