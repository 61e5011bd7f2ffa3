'use strict';
// bench/session's peer run: connect-pg-simple (with pg and express-session's Store) doing the
// session store's three operations for a fixed time at each concurrency: create a session with
// a fresh random id, read one, write one. Prints one JSON line per concurrency, in operations
// per second.
//   node session_connect_pg_simple.js URL CONCURRENCY[,CONCURRENCY...] SECONDS ROUNDS
// The modules come from NODE_PATH (scripts/bootstrap installs them into build/tools).

const crypto = require('crypto');
const { Pool } = require('pg');
const session = require('express-session');
const PGStore = require('connect-pg-simple')(session);

const [url, concurrencyList, secondsText, roundsText] = process.argv.slice(2);
const levels = concurrencyList.split(',').map(Number);
const windowMs = Number(secondsText) * 1000;
const rounds = Number(roundsText);
const schema = 'bench_connect_pg_simple';
const week = 7 * 24 * 3600 * 1000;

function newSession(counter) {
  return {
    cookie: { originalMaxAge: week, expires: new Date(Date.now() + week).toISOString(),
              httpOnly: true, path: '/' },
    user: 42,
    counter,
    note: 'x'.repeat(48),
  };
}

function call(store, method, ...args) {
  return new Promise((resolve, reject) => {
    store[method](...args, (error, value) => (error ? reject(error) : resolve(value)));
  });
}

// Runs `operation` from `concurrency` loops until the window closes; returns operations/s.
async function rate(concurrency, operation, ms = windowMs) {
  let done = 0;
  const started = process.hrtime.bigint();
  const deadline = Date.now() + ms;
  const worker = async (w) => {
    for (let i = w; Date.now() < deadline; i += concurrency) {
      await operation(i);
      done += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return done / seconds;
}

async function main() {
  const admin = new Pool({ connectionString: url, max: 1 });
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.query(`CREATE SCHEMA ${schema}`);
  // The table of connect-pg-simple's table.sql.
  await admin.query(`CREATE TABLE ${schema}.session (sid varchar NOT NULL PRIMARY KEY,
                     sess json NOT NULL, expire timestamp(6) NOT NULL)`);
  await admin.query(`CREATE INDEX ON ${schema}.session (expire)`);

  for (const concurrency of levels) {
    const pool = new Pool({ connectionString: url, max: concurrency });
    const store = new PGStore({ pool, schemaName: schema, tableName: 'session',
                                pruneSessionInterval: false });
    const ids = [];
    for (let i = 0; i < 2000; i++) {
      const id = crypto.randomBytes(32).toString('base64url');
      await call(store, 'set', id, newSession(i));
      ids.push(id);
    }
    const operations = {
      generate: (i) => call(store, 'set', crypto.randomBytes(32).toString('base64url'),
                            newSession(i)),
      get: async (i) => {
        const found = await call(store, 'get', ids[i % ids.length]);
        if (!found) throw new Error('a session went missing');
      },
      set: (i) => call(store, 'set', ids[i % ids.length], newSession(i)),
    };
    const best = {};
    for (const name of Object.keys(operations))
      await rate(concurrency, operations[name], windowMs / 2);  // warm-up
    for (let round = 0; round < rounds; round++) {
      for (const name of Object.keys(operations))
        best[name] = Math.max(best[name] || 0, await rate(concurrency, operations[name]));
    }
    console.log(JSON.stringify({ concurrency, ...best }));
    await pool.end();
  }
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}

main().catch((error) => {
  console.error(`connect-pg-simple bench: ${error.stack || error}`);
  process.exit(1);
});
