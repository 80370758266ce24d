// memjs (node's binary-protocol client) authenticating with SASL PLAIN: HOST:PORT.
//
// Run by engine/tests/auth.rs with MEMJS pointing at the installed package
// (scripts/install-test-deps.sh puts it in target/tools/node); prints "ok" when
// every check passed. The server's password file holds alice:wonderland.
const memjs = require(process.env.MEMJS);
const addr = process.argv[2];
// memjs logs a failed server to stdout; that goes to stderr here, so stdout holds only "ok".
const logger = { log: (...a) => console.error(...a) };
const opts = (password) => ({ username: 'alice', password, retries: 0, timeout: 5, logger });

async function main() {
  const c = memjs.Client.create(addr, opts('wonderland'));
  await c.set('k', 'v', { expires: 0 });
  const { value } = await c.get('k');
  if (value.toString() !== 'v') throw new Error(`get k: ${value}`);
  const big = 'x'.repeat(200000);
  await c.set('big', big, {});
  if ((await c.get('big')).value.toString() !== big) throw new Error('big value differs');
  c.close();

  const bad = memjs.Client.create(addr, opts('nope'));
  let refused = false;
  try {
    await bad.set('k', 'w', {});
  } catch (e) {
    refused = true;
  }
  bad.close();
  if (!refused) throw new Error('a wrong password was accepted');

  const again = memjs.Client.create(addr, opts('wonderland'));
  if ((await again.get('k')).value.toString() !== 'v') throw new Error('k changed after the refused set');
  again.close();
  console.log('ok');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
