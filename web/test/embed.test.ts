// Where the client finds its server when another site's page embeds it, and where it mounts.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isCrossOrigin, mountPoint, serverBase, serverLocation, serverUrl } from '../src/embed';

test('the server is the embedding page’s setting when it names an http(s) URL, else this page’s own', () => {
  assert.equal(serverBase({}), './');
  assert.equal(serverBase({ plugNmeetConfig: { serverUrl: 'https://meet.example.org' } }), 'https://meet.example.org/');
  assert.equal(serverBase({ plugNmeetConfig: { serverUrl: 'https://meet.example.org/conf/' } }), 'https://meet.example.org/conf/');
  assert.equal(serverBase({ PLUG_N_MEET_SERVER_URL: 'http://10.0.0.5:8080' }), 'http://10.0.0.5:8080/', 'the older global');
  assert.equal(serverBase({ plugNmeetConfig: { serverUrl: 'javascript:alert(1)' } }), './', 'not a server');
  assert.equal(serverBase({ plugNmeetConfig: { serverUrl: 'not a url' } }), './');
  assert.equal(serverBase({ plugNmeetConfig: { serverUrl: 42 } }), './');
  assert.equal(serverUrl('./', './api/verifyToken'), './api/verifyToken');
  assert.equal(serverUrl('https://m.example/', 'api/verifyToken'), 'https://m.example/api/verifyToken');
  const page = { href: 'https://lms.example/mod/plugnmeet/conference.php?id=3', origin: 'https://lms.example' };
  assert.equal(isCrossOrigin('https://m.example/', page), true);
  assert.equal(isCrossOrigin('./', page), false);
  assert.deepEqual(serverLocation('https://m.example:8443/', page), { protocol: 'https:', host: 'm.example:8443' });
  assert.deepEqual(serverLocation('./', page), { protocol: 'https:', host: 'lms.example' });
});

test('the client mounts into its own element or an LMS page’s', () => {
  const doc = (ids: string[]) => ({ getElementById: (id: string) => (ids.includes(id) ? ({ id } as unknown as HTMLElement) : null) });
  assert.equal(mountPoint(doc(['app']))?.id, 'app');
  assert.equal(mountPoint(doc(['plugNmeet-app']))?.id, 'plugNmeet-app');
  assert.equal(mountPoint(doc([])), null);
});
