// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
/**
 * Running a probe script against a fixture sysfs tree: a shell script
 * (`fixture`) sets the tree up in a private mount namespace, then runs the
 * probe there on this runtime, so DSA discovery and `DsaMover.open()` see
 * a machine that has DSA devices. Shared by the DSA tests.
 *
 * @module
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { listDsa } from "../mover/_dsa_discovery.ts";
import { ROOT_URL, RUNTIME, tempDir } from "./_harness.ts";

/** Why a fixture cannot run here, or "" when it can. */
export function namespaceSkip(): string {
  if (process.getuid?.() !== 0) return "needs root (a private mount namespace)";
  const r = spawnSync("unshare", ["-m", "--propagation", "private", "true"]);
  if (r.status !== 0) return "unshare -m is not permitted here";
  if (!listDsa().loaded) return "libaccel-config is not installed";
  return "";
}

/**
 * Run `probe` (a module; `@root/` names the repository) after `fixture`
 * (a bash script ending in `exec "$@"`) in a private mount namespace.
 */
export function runInNamespace(
  fixture: string,
  probe: string,
): SpawnSyncReturns<string> {
  const dir = tempDir();
  const script = join(dir, "probe.ts");
  const setup = join(dir, "fixture.sh");
  writeFileSync(script, probe.replaceAll("@root/", ROOT_URL));
  writeFileSync(setup, fixture);
  const args = RUNTIME === "deno"
    ? ["run", "-A", "--no-check", script]
    : [script];
  return spawnSync(
    "unshare",
    [
      "-m",
      "--propagation",
      "private",
      "bash",
      setup,
      process.execPath,
      ...args,
    ],
    {
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, RUST_BACKTRACE: "0", NO_COLOR: "1" },
    },
  );
}
