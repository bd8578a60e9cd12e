// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * The package exports its `.ts` sources, so a Bun project's `tsc` checks
 * them with the project's own options and types: they must check with
 * Bun's types alone (no Deno namespace), under the options `bun init`
 * writes (README says which one they cannot take).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, ROOT, tempDir, test } from "./_harness.ts";

/** deno.json's export subpaths, as a user imports them (by path here). */
function entryPoints(): string[] {
  const meta = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
  return Object.values(meta.exports as Record<string, string>).map((p) =>
    join(ROOT, p)
  );
}

// Bug: ffi/_deno.ts used the global `Deno` namespace, which only Deno's
// types declare: `tsc` in a Bun project importing the package failed
// with 9 errors in it (Cannot find name 'Deno'), in a file the user
// cannot change and skipLibCheck does not skip (it is no .d.ts).
test(
  "a Bun project's tsc checks every entry point with Bun's types alone",
  () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, "app.ts"),
      entryPoints().map((p, i) =>
        `import * as m${i} from ${JSON.stringify(p)};\nconsole.log(m${i});\n`
      ).join(""),
    );
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          // what `bun init` writes, but noUncheckedIndexedAccess
          lib: ["ESNext"],
          target: "ESNext",
          module: "Preserve",
          moduleDetection: "force",
          allowJs: true,
          moduleResolution: "bundler",
          allowImportingTsExtensions: true,
          verbatimModuleSyntax: true,
          noEmit: true,
          strict: true,
          skipLibCheck: true,
          noFallthroughCasesInSwitch: true,
          noImplicitOverride: true,
          types: ["bun-types"],
          typeRoots: [join(ROOT, "node_modules")],
        },
        files: ["app.ts"],
      }),
    );
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const r = spawnSync("node", [tsc, "-p", dir], {
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(r.error, undefined);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  },
  { timeout: 150_000 },
);
