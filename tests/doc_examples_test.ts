// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// Every example in the JSDoc of the files `deno check --doc` covers (in
// tools/test.sh) runs, pasted as a user pastes it, on this runtime: the
// library is Deno- and Bun-first, so an example may use neither runtime's
// namespace. `deno check --doc` only type-checks them, importing the
// documented file's exports into each one by itself (an example that
// forgot an import passes there); here each runs as written.
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { assert, ROOT, RUNTIME, tempDir, test } from "./_harness.ts";

/** One fenced example of a JSDoc comment. */
interface Example {
  /** `file:line` of its opening fence, the file relative to the root. */
  where: string;
  /** The file's absolute path. */
  file: string;
  /** The example's source, with the comment's leading `*` removed. */
  code: string;
  /** Whether its fence says `ignore` (`deno check --doc` skips it too). */
  ignored: boolean;
}

/**
 * Examples that cannot run on both runtimes, each with the reason (one
 * that shows one runtime's own API): the one example of `file` whose code
 * contains `contains`. None yet.
 */
const ONE_RUNTIME: readonly {
  file: string;
  contains: string;
  reason: string;
}[] = [];

/** Fence languages `deno check --doc` checks. */
const CODE = /^(?:ts|typescript|mts|js|javascript|mjs)$/;

/** The files and folders tools/test.sh gives `deno check --doc`. */
function docRoots(): string[] {
  const script = readFileSync(join(ROOT, "tools/test.sh"), "utf8");
  const m = /\bdeno check --doc ([^\n]+)/.exec(script);
  assert.ok(m, "tools/test.sh runs no `deno check --doc`");
  return m[1].trim().split(/\s+/);
}

function walk(path: string): string[] {
  if (path.endsWith(".ts")) return [path];
  return readdirSync(path, { withFileTypes: true })
    .sort((a, b) => a.name < b.name ? -1 : 1)
    .flatMap((e) =>
      e.isDirectory()
        ? walk(join(path, e.name))
        : e.name.endsWith(".ts")
        ? [join(path, e.name)]
        : []
    );
}

/** Every fenced code example in the JSDoc comments of `file`. */
function examplesOf(file: string): Example[] {
  const source = readFileSync(file, "utf8");
  const found: Example[] = [];
  for (const comment of source.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const first = source.slice(0, comment.index).split("\n").length;
    const lines = comment[0].split("\n");
    let open: { line: number; info: string[]; body: string[] } | undefined;
    lines.forEach((raw, i) => {
      const line = raw.replace(/^\s*(?:\/\*\*|\*(?!\/))? ?/, "");
      if (open === undefined) {
        const fence = /^```(.*)$/.exec(line);
        if (fence) {
          open = { line: first + i, info: fence[1].split(/\s+/), body: [] };
        }
      } else if (/^```\s*$/.test(line)) {
        if (CODE.test(open.info[0])) {
          found.push({
            where: `${relative(ROOT, file)}:${open.line}`,
            file,
            code: open.body.join("\n") + "\n",
            ignored: open.info.includes("ignore"),
          });
        }
        open = undefined;
      } else {
        open.body.push(line);
      }
    });
  }
  return found;
}

/** The package's entry points, `@asyncpmem/asyncpmem/x` to a file URL. */
const ENTRY: Record<string, string> = Object.fromEntries(
  Object.entries<string>(
    JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")).exports,
  ).map(([sub, path]) => [
    "@asyncpmem/asyncpmem" + sub.slice(1),
    pathToFileURL(join(ROOT, path)).href,
  ]),
);

/**
 * An example's source with its imports of the package pointed at the
 * entry points' files, and relative imports (internal files' examples)
 * at the documented file's folder.
 */
function localize(example: Example): string {
  return example.code.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])([^"']+)\2/g,
    (all, head: string, quote: string, spec: string) => {
      let url: string | undefined;
      if (spec.startsWith("@asyncpmem/")) {
        url = ENTRY[spec];
        assert.ok(url, `${example.where} imports "${spec}": no such export`);
      } else if (spec.startsWith("./") || spec.startsWith("../")) {
        url = pathToFileURL(join(dirname(example.file), spec)).href;
      }
      return url === undefined ? all : `${head}${quote}${url}${quote}`;
    },
  );
}

const ALL = docRoots().flatMap((p) => walk(join(ROOT, p))).flatMap(examplesOf);
/** The examples to run: neither `ignore`d nor declared one runtime's. */
const RUN = ALL.filter((e) => !e.ignored && !excluded(e));

/** The {@linkcode ONE_RUNTIME} entries that name `example`. */
function exclusionsOf(example: Example): typeof ONE_RUNTIME {
  return ONE_RUNTIME.filter((x) =>
    example.where.startsWith(`${x.file}:`) && example.code.includes(x.contains)
  );
}

function excluded(example: Example): boolean {
  return exclusionsOf(example).length > 0;
}

/** A failed example: where, and what it threw. */
interface Failure {
  where: string;
  error: string;
}

/**
 * Run `examples` in one child process of this runtime, one after another,
 * each a module of its own imported by a generated runner; their temp
 * files go to a directory of their own. The failures, in order.
 */
function runAll(
  examples: readonly { where: string; code: string }[],
): { failures: Failure[]; ran: number; output: string } {
  const dir = tempDir();
  const files = examples.map((e, i) => {
    const file = join(dir, `example_${i}.ts`);
    writeFileSync(file, `// ${e.where}\n${e.code}`);
    return [e.where, pathToFileURL(file).href];
  });
  const runner = join(dir, "runner.ts");
  writeFileSync(runner, RUNNER.replace("EXAMPLES", JSON.stringify(files)));
  const tmp = join(dir, "tmp");
  mkdirSync(tmp);
  const args = RUNTIME === "deno"
    ? ["run", "-A", "--no-check", runner]
    : [runner];
  const r = spawnSync(process.execPath, args, {
    encoding: "utf8",
    cwd: tmp,
    env: { ...process.env, NO_COLOR: "1", RUST_BACKTRACE: "0", TMPDIR: tmp },
    timeout: 240_000,
    maxBuffer: 64 << 20,
  });
  const output = `${r.stdout}\n${r.stderr}`;
  const line = /^RESULT (.+)$/m.exec(r.stdout);
  assert.ok(
    line,
    `the runner ended (status ${r.status}, signal ${r.signal}) before its result:\n${output}`,
  );
  const { failures, ran } = JSON.parse(line[1]);
  return { failures, ran, output };
}

/** The child's script: import each example in turn, catch what it throws. */
const RUNNER = `import process from "node:process";
const examples = EXAMPLES;
const failures = [];
let current = "(none)";
// a promise an example left to reject fails that example, not the runner
process.on("unhandledRejection", (e) => {
  failures.push({ where: current + " (unhandled rejection)", error: show(e) });
});
function show(e) {
  return e instanceof Error ? (e.stack ?? String(e)) : String(e);
}
let ran = 0;
for (const [where, url] of examples) {
  current = where;
  try {
    await import(url);
  } catch (e) {
    failures.push({ where, error: show(e) });
  }
  ran++;
  // a turn of the event loop, so a rejection it left is reported as its own
  await new Promise((resolve) => setTimeout(resolve, 0));
}
console.log("RESULT " + JSON.stringify({ failures, ran }));
process.exit(0);
`;

/** The failures, each with the first lines of its stack. */
function report(failures: readonly Failure[]): string {
  return failures.map((f) =>
    `${f.where}: ${f.error.split("\n").slice(0, 4).join("\n")}`
  ).join("\n\n");
}

test("the JSDoc examples `deno check --doc` covers are found, and each exclusion names one", () => {
  assert.ok(RUN.length >= 100, `only ${RUN.length} examples found`);
  for (const x of ONE_RUNTIME) {
    const named = ALL.filter((e) => exclusionsOf(e).includes(x));
    assert.equal(named.length, 1, `ONE_RUNTIME: ${x.file} "${x.contains}"`);
  }
});

test("no JSDoc example uses the Deno or Bun namespace, which the other runtime lacks", () => {
  // the `ignore`d ones too: a user copies them as well
  const users = ALL.filter((e) =>
    !excluded(e) && /\b(?:Deno|Bun)\./.test(e.code)
  );
  assert.deepEqual(users.map((e) => e.where), []);
});

test(
  "every JSDoc example runs unchanged on this runtime, all in one process",
  () => {
    const t0 = performance.now();
    const { failures, ran, output } = runAll(
      RUN.map((e) => ({ where: e.where, code: localize(e) })),
    );
    const ms = Math.round(performance.now() - t0);
    if (failures.length) {
      assert.fail(
        `${failures.length} of ${RUN.length} examples failed:\n\n${
          report(failures)
        }\n\nthe runner's output:\n${output}`,
      );
    }
    assert.equal(ran, RUN.length);
    // for the log: the cost of this test on this runtime
    console.log(`${ran} JSDoc examples ran in ${ms} ms`);
  },
  { timeout: 300_000 },
);

test(
  "the JSDoc examples' runner reports an example that throws, and runs the next one",
  () => {
    const { failures, ran } = runAll([
      { where: "a.ts:1", code: "throw new Error('broken example');\n" },
      {
        where: "b.ts:1",
        code: "Promise.reject(new Error('left to reject'));\nexport {};\n",
      },
      { where: "c.ts:1", code: "export const ok = 1;\n" },
    ]);
    assert.equal(ran, 3);
    assert.deepEqual(failures.map((f) => f.where), [
      "a.ts:1",
      "b.ts:1 (unhandled rejection)",
    ]);
    assert.match(failures[0].error, /broken example/);
  },
  { timeout: 60_000 },
);

/** The `ts` blocks of the README and docs/*.md, as `file:line` and code. */
function markdownExamples(): { where: string; code: string }[] {
  const files = [
    "README.md",
    ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md"))
      .sort().map((f) => `docs/${f}`),
  ];
  return files.flatMap((file) => {
    const text = readFileSync(join(ROOT, file), "utf8");
    return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => ({
      where: `${file}:${text.slice(0, m.index).split("\n").length}`,
      code: m[1],
    }));
  });
}

// The README's tour runs in examples_test.ts; the blocks of docs/ need
// persistent memory or a DSA device, so here they are only read.
test("the README's and docs' ts blocks use neither runtime's namespace, and import what the package exports", async () => {
  const blocks = markdownExamples();
  assert.ok(blocks.length > 0, "no ts block in the README or docs/");
  for (const { where, code } of blocks) {
    assert.doesNotMatch(code, /\b(?:Deno|Bun)\./, where);
    const imports = code.matchAll(
      /^import\s*\{([^}]*)\}\s*from\s*"(@asyncpmem\/[^"]+)"/gm,
    );
    for (const [, names, spec] of imports) {
      assert.ok(ENTRY[spec], `${where} imports "${spec}": no such export`);
      const entry = await import(ENTRY[spec]);
      for (const raw of names.split(",")) {
        const name = raw.trim().split(/\s+as\s+/)[0];
        if (name === "" || name.startsWith("type ")) continue;
        assert.ok(name in entry, `${where}: "${spec}" exports no ${name}`);
      }
    }
  }
});
