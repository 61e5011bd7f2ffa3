// bench/queue's peers: graphile-worker and pg-boss (from scripts/bootstrap's npm modules) on the
// server bench_queue runs pgkit against, with the same job counts. Prints one JSON line per
// peer: {"peer":..., "enqueue":jobs/s, "enqueue_many":jobs/s, "work_1":jobs/s, "work_8":jobs/s}.
//   node bench/queue_peers.js URL SINGLES BATCHES MORE
// SINGLES jobs are enqueued one per call, then BATCHES batches of 1000 in one call each; one
// worker (concurrency 1) drains them all; MORE jobs are added in one batch and drained at
// concurrency 8. Every job is a no-op. A phase ends when the peer's own table holds no job
// that is still to run (read every 10 ms on a connection of its own).

const { Client } = require('pg');
const { makeWorkerUtils, run, Logger } = require('graphile-worker');
const PgBoss = require('pg-boss');

const [url, singles, batches, more] = [
  process.argv[2],
  Number(process.argv[3] || 5000),
  Number(process.argv[4] || 10),
  Number(process.argv[5] || 20000)
];
const quiet = new Logger(() => () => {});
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function drained (client, sql) {
  for (;;) {
    const { rows } = await client.query(sql);
    if (Number(rows[0].count) === 0) return;
    await sleep(10);
  }
}

async function timed (work) {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function graphileWorker (client) {
  await client.query('DROP SCHEMA IF EXISTS graphile_worker CASCADE');
  const utils = await makeWorkerUtils({ connectionString: url, logger: quiet });
  await utils.migrate();
  const figures = { peer: 'graphile-worker' };
  figures.enqueue = singles / await timed(async () => {
    for (let i = 0; i < singles; ++i) await utils.addJob('noop', {});
  });
  // graphile_worker.add_jobs is its documented way to add many jobs in one statement.
  const addMany = count => client.query(
    'SELECT graphile_worker.add_jobs(array(SELECT json_populate_recordset(' +
      'NULL::graphile_worker.job_spec, $1::json)))',
    [JSON.stringify(Array(count).fill({ identifier: 'noop', payload: {} }))]);
  figures.enqueue_many = batches * 1000 / await timed(async () => {
    for (let i = 0; i < batches; ++i) await addMany(1000);
  });
  const left = 'SELECT count(*) FROM graphile_worker.jobs';
  const work = async (concurrency, jobs) => {
    let runner;
    const seconds = await timed(async () => {
      runner = await run({
        connectionString: url,
        concurrency,
        noHandleSignals: true,
        pollInterval: 1000,
        logger: quiet,
        taskList: { noop: async () => {} }
      });
      await drained(client, left);
    });
    await runner.stop();
    return jobs / seconds;
  };
  figures.work_1 = await work(1, singles + batches * 1000);
  await addMany(more);
  figures.work_8 = await work(8, more);
  await utils.release();
  return figures;
}

async function pgBoss (client) {
  await client.query('DROP SCHEMA IF EXISTS pgboss CASCADE');
  const boss = new PgBoss({
    connectionString: url, max: 16, supervise: false, schedule: false
  });
  boss.on('error', error => { throw error; });
  await boss.start();
  await boss.createQueue('noop');
  const figures = { peer: 'pg-boss' };
  figures.enqueue = singles / await timed(async () => {
    for (let i = 0; i < singles; ++i) await boss.send('noop', {});
  });
  const addMany = count => boss.insert(Array(count).fill({ name: 'noop', data: {} }));
  figures.enqueue_many = batches * 1000 / await timed(async () => {
    for (let i = 0; i < batches; ++i) await addMany(1000);
  });
  const left = "SELECT count(*) FROM pgboss.job WHERE name = 'noop' AND state < 'completed'";
  // pg-boss runs one fetch loop per work() call: 8 calls are its 8 workers. A loop waits out
  // its polling interval (0.5 s at least) after every fetch, so it fetches 100 jobs at a time
  // (pgkit's workers claim 10): with 10 it could not pass 20 jobs/s per worker.
  const work = async (workers, jobs) => {
    const seconds = await timed(async () => {
      for (let i = 0; i < workers; ++i) {
        await boss.work('noop', { batchSize: 100, pollingIntervalSeconds: 0.5 }, async () => {});
      }
      await drained(client, left);
    });
    await boss.offWork('noop');
    return jobs / seconds;
  };
  figures.work_1 = await work(1, singles + batches * 1000);
  await addMany(more);
  figures.work_8 = await work(8, more);
  await boss.stop({ graceful: true, wait: true });
  return figures;
}

(async () => {
  const client = new Client({ connectionString: url });
  await client.connect();
  for (const peer of [graphileWorker, pgBoss]) {
    console.log(JSON.stringify(await peer(client)));
  }
  await client.end();
})().catch(error => {
  console.error(`queue_peers.js: ${error.stack || error}`);
  process.exit(1);
});
