// Validates AsyncAPI documents with the official parser (@asyncapi/parser), as AsyncAPI's
// own tools do: prints every diagnostic and exits 1 when one has severity error.
//
//   node validate.mjs docs/asyncapi.json [more.json ...]
//
// Run from a copy holding node_modules (tests/unit/project/test_asyncapi_document.py installs
// package-lock.json into .cache/, never into the checkout).
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const paths = process.argv.slice(2);
if (paths.length === 0) {
  console.error("usage: node validate.mjs <asyncapi document> ...");
  process.exit(2);
}
const parser = new Parser();
const names = Object.fromEntries(Object.entries(DiagnosticSeverity).map(([k, v]) => [v, k]));
let invalid = 0;
for (const path of paths) {
  const { document, diagnostics } = await parser.parse(await readFile(path, "utf8"), { source: path });
  for (const d of diagnostics) {
    console.log(`${path}: ${names[d.severity] ?? d.severity} ${d.code} at /${d.path.join("/")}: ${d.message}`);
  }
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  if (errors.length > 0 || document === undefined) {
    console.log(`${path}: ${errors.length} error(s); not a valid AsyncAPI document`);
    invalid += 1;
    continue;
  }
  console.log(
    `${path}: valid AsyncAPI ${document.version()}: ${document.channels().length} channels, ` +
      `${document.operations().length} operations, ${document.components().messages().length} messages`,
  );
}
process.exit(invalid > 0 ? 1 : 0);
