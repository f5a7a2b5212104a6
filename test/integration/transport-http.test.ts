import { HttpTransport } from '../../src/transport/http.js';
import { transportCompliance } from '../helpers/transport-compliance.js';

// The same suite as the memory transport's (test/unit/transport-memory.test.ts), on real sockets.
transportCompliance('http', { transport: () => new HttpTransport(), host: '127.0.0.1' });
