// Loaded with --import before every test file when the suite runs under the validator
// (npm run test:lockdep): installs async-context tracking and, with DMABUF_LOCKDEP=1, enables it.
import '../../src/node.js';
