/**
 * The dedicated fuzz run of issue 7: at least 10,000 generated client requests through the
 * protocol app and, as API Gateway payload 2.0 events, through the predict Lambda handler, both
 * over real onnxruntime sessions. Properties (test/support/fuzz/oracle.ts): never a 5xx, nothing thrown,
 * no answer showing the runtime's source paths or kernel names,
 * every refusal a JSON `{"error": "..."}` with a message, every success well-formed.
 *
 *   npx tsx bench/fuzz.ts [--runs=12000] [--seed=N]
 *
 * `--runs` is split evenly between the app and the handler. Exits non-zero on any violation and
 * prints the first ones with the seed that reproduces them; `npm test` runs the same properties
 * a few hundred times (the *.fuzz.test.ts files).
 */
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { fuzzEvent, fuzzRequest } from '../test/support/fuzz/arbitraries.ts';
import { eventViolations, violations } from '../test/support/fuzz/oracle.ts';
import { createFuzzTargets } from '../test/support/fuzz/targets.ts';
import { printTable, writeResults } from './lib/report.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const RUNS = Number(arg('runs') ?? 12_000);
const SEED = arg('seed') === undefined ? Date.now() % 2 ** 31 : Number(arg('seed'));

interface Tally {
  cases: number;
  statuses: Map<number, number>;
  thrown: number;
  violations: number;
}

interface Failure {
  target: string;
  family: string;
  what: string;
  problems: string[];
}

const tallies = new Map<string, Tally>();
const failures: Failure[] = [];

const tally = (key: string): Tally => {
  let t = tallies.get(key);
  if (t === undefined) {
    t = { cases: 0, statuses: new Map(), thrown: 0, violations: 0 };
    tallies.set(key, t);
  }
  return t;
};

const record = (
  target: string,
  family: string,
  what: string,
  status: number | undefined,
  problems: string[],
) => {
  const t = tally(`${target} ${family.split('/')[0]}`);
  t.cases += 1;
  if (status === undefined) t.thrown += 1;
  else t.statuses.set(status, (t.statuses.get(status) ?? 0) + 1);
  if (problems.length > 0) {
    t.violations += 1;
    if (failures.length < 10) failures.push({ target, family, what, problems });
  }
};

const statusOf = (result: unknown): number | undefined =>
  typeof result === 'object' && result !== null && 'statusCode' in result
    ? Number(result.statusCode)
    : undefined;

const main = async () => {
  const targets = await createFuzzTargets();
  const half = Math.ceil(RUNS / 2);
  const started = performance.now();

  const appRun = await fc.check(
    fc.asyncProperty(fuzzRequest, async ({ family, request }) => {
      const what = `${request.method} ${request.path.slice(0, 100)}`;
      try {
        const res = await targets.app(request);
        record('app', family, what, res.status, violations(res));
      } catch (err) {
        record('app', family, what, undefined, [`threw ${String(err)}`]);
      }
    }),
    { numRuns: half, seed: SEED },
  );
  const appMs = performance.now() - started;

  const handlerStarted = performance.now();
  const handlerRun = await fc.check(
    fc.asyncProperty(fuzzEvent, async ({ family, event }) => {
      const what = `${event.requestContext.http.method} ${event.rawPath.slice(0, 100)}`;
      try {
        const result = await targets.invoke(event);
        record('handler', family, what, statusOf(result), eventViolations(result));
      } catch (err) {
        record('handler', family, what, undefined, [`threw ${String(err)}`]);
      }
    }),
    { numRuns: RUNS - half, seed: SEED + 1 },
  );
  const handlerMs = performance.now() - handlerStarted;
  await targets.close();

  const statuses = [...new Set([...tallies.values()].flatMap((t) => [...t.statuses.keys()]))].sort(
    (a, b) => a - b,
  );
  const rows = [...tallies.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, t]) => [
      key,
      t.cases,
      ...statuses.map((s) => t.statuses.get(s) ?? 0),
      t.thrown,
      t.violations,
    ]);
  const total = (pick: (t: Tally) => number) =>
    [...tallies.values()].reduce((sum, t) => sum + pick(t), 0);
  rows.push([
    'total',
    total((t) => t.cases),
    ...statuses.map((s) => total((t) => t.statuses.get(s) ?? 0)),
    total((t) => t.thrown),
    total((t) => t.violations),
  ]);
  printTable(
    `fuzz: ${RUNS} cases, seed ${SEED} (app ${appMs.toFixed(0)} ms, handler ${handlerMs.toFixed(0)} ms)`,
    ['target family', 'cases', ...statuses.map(String), 'thrown', 'violations'],
    rows,
  );
  const cases = total((t) => t.cases);
  const seconds = (appMs + handlerMs) / 1000;
  console.log(
    `\n${cases} cases in ${seconds.toFixed(1)} s (${(cases / seconds).toFixed(0)} cases/s); ` +
      `5xx: ${statuses.filter((s) => s >= 500).reduce((n, s) => n + total((t) => t.statuses.get(s) ?? 0), 0)}, ` +
      `thrown: ${total((t) => t.thrown)}, violations: ${total((t) => t.violations)}`,
  );
  for (const f of failures) {
    console.log(`\n✗ ${f.target} ${f.family}: ${f.what}\n  ${f.problems.join('\n  ')}`);
  }
  for (const run of [appRun, handlerRun]) {
    if (run.failed) console.log(`\nfast-check itself failed: ${run.errorInstance ?? 'unknown'}`);
  }
  await writeResults('fuzz', {
    seed: SEED,
    cases,
    seconds,
    byFamily: Object.fromEntries(
      [...tallies.entries()].map(([k, t]) => [
        k,
        {
          cases: t.cases,
          statuses: Object.fromEntries(t.statuses),
          thrown: t.thrown,
          violations: t.violations,
        },
      ]),
    ),
    failures,
  });
  const failed =
    total((t) => t.violations) > 0 || appRun.failed || handlerRun.failed || cases < RUNS;
  process.exitCode = failed ? 1 : 0;
};

await main();
