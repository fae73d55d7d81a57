// The harness shared by the Node test suites of tests/ (livekit-browser, livekit-native,
// plugnmeet-sdk, webclient, network, proxy). Node built-ins only; each suite keeps its own
// helpers (pages, bots, proxies, namespaces) beside its tests.

export { authHeaders, authPost, parseJson, signBody } from './auth.mjs';
export { CHROMIUM, CHROMIUM_ARGS, requireChromium } from './chromium.mjs';
export { TestLog, WorkDir, redact } from './log.mjs';
export { ENCLAVE_BIN, binFromEnv, packageDir, packageVersion, repoRoot, requireBinary, testsRoot } from './paths.mjs';
export { freeTcpPort, freeUdpPort } from './ports.mjs';
export { Child, alive, trackPid } from './proc.mjs';
export { EnclaveServer, TestEnclave, envWithoutEnclave, launchEnclave } from './server.mjs';
export { livekitToken } from './tokens.mjs';
export { Deadline, sleep, waitFor, within } from './wait.mjs';
