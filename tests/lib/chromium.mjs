// Debian's Chromium for the browser suites (playwright-core brings none): where it is and the
// flags every suite launches it with.

import fs from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

// Headless, no sandbox (root in CI), no GPU, no QUIC, nothing phoning home, and fake camera and
// microphone (a test pattern and a beep) that need no permission prompt.
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
];

export function requireChromium() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: \`apt-get install -y chromium\` (or set CHROMIUM_BIN)`);
}
