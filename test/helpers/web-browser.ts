/**
 * Debian's Chromium through `playwright-core`, for the browser tests. Never downloads a browser:
 * when `/usr/bin/chromium` is missing or cannot start, {@link launchChromium} says why, and the
 * test skips with that reason.
 *
 * @module
 */

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';

/** Where Debian's `chromium` package installs the browser. */
export const CHROMIUM_PATH = process.env.TSP2P_CHROMIUM ?? '/usr/bin/chromium';

/** The launch flags: headless, no sandbox (containers), and nothing that calls home. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A running browser, and the test's temporary folder (screenshots go there). */
export interface Browser {
  readonly context: BrowserContext;
  /** The test's temporary folder; kept after the test for its screenshots. */
  readonly dir: string;
  /** Closes the browser and removes its profile (the screenshots stay). */
  close(): Promise<void>;
}

/**
 * Starts Chromium with a fresh profile under a new temporary folder, with {@link CHROMIUM_ARGS}
 * and `extraArgs` (e.g. `--host-resolver-rules=...` to reach 127.0.0.1 under another name).
 * Resolves with the browser, or with a string saying why it cannot run.
 */
export async function launchChromium(
  prefix: string,
  extraArgs: readonly string[] = [],
): Promise<Browser | string> {
  if (!existsSync(CHROMIUM_PATH)) {
    return `no browser at ${CHROMIUM_PATH}: install Debian's chromium (apt-get install -y chromium)`;
  }
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (err) {
    return `playwright-core cannot be loaded: ${(err as Error).message}`;
  }
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const profile = join(dir, 'profile');
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...extraArgs],
      timeout: 60_000,
      viewport: { width: 1000, height: 640 },
    });
    return {
      context,
      dir,
      close: async () => {
        await context.close().catch(() => undefined);
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    return `chromium cannot start: ${(err as Error).message.split('\n')[0]}`;
  }
}
