// Rate-limit decisions with memjs's plain get (binary protocol; no rate-limit API in the client).
//
//   node memjs_decide.js SERVERS COUNT KEY...
//
// SERVERS is a comma list of host:port. Each of COUNT rounds gets every KEY once, in order,
// and prints "KEY VALUE", "KEY MISS" or "KEY ERROR reason". memjs is found through NODE_PATH.
'use strict';
const memjs = require('memjs');

const [servers, countArg, ...keys] = process.argv.slice(2);
const count = Number(countArg);
if (!servers || !Number.isInteger(count) || keys.length === 0) {
  console.error('usage: node memjs_decide.js SERVERS COUNT KEY...');
  process.exit(2);
}
// retries: 1 = no retry: a retried get would be a second decision.
const client = memjs.Client.create(servers, { timeout: 5, retries: 1, logger: { log() {} } });

(async () => {
  for (let i = 0; i < count; i++) {
    for (const key of keys) {
      try {
        const { value } = await client.get(key);
        console.log(`${key} ${value === null ? 'MISS' : value.toString()}`);
      } catch (e) {
        console.log(`${key} ERROR ${e.message}`);
      }
    }
  }
  client.close();
})();
