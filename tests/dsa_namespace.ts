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

/**
 * How every fixture starts: a private tmpfs /dev that keeps the devices a
 * runtime uses and /dev/shm, with an empty /dev/dsa; a tmpfs over
 * /sys/bus; `w FILE VALUE` writes a sysfs attribute, and `dev_attrs DIR
 * NUMA_NODE` a DSA device's attributes but its `op_cap` (the fixture
 * writes that one, in the form its kernel would).
 */
export const FIXTURE_START = `set -e
T=$(mktemp -d); mkdir -p $T/dev $T/shm
mount --bind /dev $T/dev
mount --bind /dev/shm $T/shm
mount -t tmpfs -o mode=755 none /dev
for n in null zero full random urandom tty; do
  touch /dev/$n; mount --bind $T/dev/$n /dev/$n
done
mkdir /dev/shm /dev/pts /dev/dsa
mount --bind $T/shm /dev/shm
ln -s /proc/self/fd /dev/fd
mount -t tmpfs none /sys/bus
w() { mkdir -p "$(dirname "$1")"; printf '%s\\n' "$2" > "$1"; }
dev_attrs() {
  for kv in version=0x100 gen_cap=0x40915f0107 pasid_enabled=1 \\
      state=enabled numa_node=$2 max_batch_size=1024 \\
      max_transfer_size=2147483648 max_engines=4 max_work_queues=8 \\
      max_groups=4 max_work_queues_size=128 cdev_major=236 \\
      configurable=1 cmd_status=0 clients=0 read_buffer_limit=0 \\
      max_read_buffers=96 ims_size=2048; do
    w "$1/\${kv%%=*}" "\${kv#*=}"
  done
}
`;

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
