// Copyright 2026 the asyncpmem authors. BSD-3-Clause license.
// What the README and the package's metadata promise a new user, checked
// against the files themselves.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { assert, ROOT, test } from "./_harness.ts";

test("the package's bin is an executable file, so npm pack leaves it as it is", () => {
  // npm pack (tools/package_check.sh, run by tools/test.sh) sets the
  // execute bits of every `bin` in the work tree it packs: a bin stored
  // without them left cli/main.ts modified after every test run
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  for (const [name, path] of Object.entries<string>(pkg.bin)) {
    const file = join(ROOT, path);
    assert.match(readFileSync(file, "utf8"), /^#!\/usr\/bin\/env /, name);
    assert.equal(
      statSync(file).mode & 0o111,
      0o111,
      `${path} is not executable`,
    );
  }
});
