/**
 * A child process for test/unit/security-session.test.ts: for 4 s, makes node keys over and over
 * (a session between each fifth node and the one before: key agreement and MAC) with a garbage
 * collection forced every 13 allocations, then prints how many it made. On Node 20 a JWK export
 * of a key fresh from `generateKeyPairSync` deadlocks when a collection runs inside it; with
 * collections this frequent, such an export hung this process in 5 runs of 6.
 */

import { setFlagsFromString } from 'node:v8';
import { generateIdentity, identityFromSeed } from '../../src/identity.js';
import type { EnvelopeSigner } from '../../src/protocol/envelope.js';
import { SessionKeys } from '../../src/security/session-keys.js';

// After the imports: module loading with this flag would take minutes.
setFlagsFromString('--gc-interval=13');
const fallback: EnvelopeSigner = { key: 'k', headers: () => ({}) };
const body = new Uint8Array(8);
const until = Date.now() + 4000;
let made = 0;
let bad = 0;
let previous: SessionKeys | undefined;
for (let i = 0; Date.now() < until; i++) {
  const keys = new SessionKeys(`node-${i}`);
  if (keys.publicKey.length !== 43) bad++;
  if (previous !== undefined && i % 5 === 0) {
    // A session with the previous node: its key agreement and MAC.
    keys.learn('previous', previous.publicKey);
    if (Object.keys(keys.signerFor('previous', fallback).headers(body)).length !== 1) bad++;
  }
  previous = keys;
  if (i % 10 === 0) {
    const identity = i % 20 === 0 ? generateIdentity() : identityFromSeed(new Uint8Array(32).fill(i % 256));
    identity.privateKey.export({ format: 'pem', type: 'pkcs8' });
  }
  made++;
}
process.stdout.write(`made ${made}, malformed ${bad}\n`);
