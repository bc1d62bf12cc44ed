// User kernels as plain objects (no import: a Web Worker has no import map for 'dmabuf').
export const invert = {
  params: { src: 'bytes', dst: 'bytes' },
  run({ src, dst }) {
    for (let i = 0; i < src.length; i++) dst[i] = 255 - src[i];
  },
};

export const spin = {
  params: { ms: 'number' },
  run({ ms }) {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      // a hung engine
    }
  },
};

export const boom = {
  params: {},
  run() {
    throw new Error('kernel fault');
  },
};
