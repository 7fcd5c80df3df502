#!/usr/bin/env node
// bicep-check: parses every .bicep file under the given directories (default: infra) with the
// tree-sitter Bicep grammar and fails, naming file:line:column, on any ERROR or MISSING node.
//
// The Bicep compiler itself cannot be installed here (it ships as a .NET binary outside npm),
// so this is a syntax check, not a type check: it catches unbalanced braces, broken strings and
// interpolations, misplaced keywords — the errors a hand edit makes.
//
// The grammar on npm (tree-sitter-bicep 1.1.0) predates the `extension` statement that loads the
// Microsoft Graph extension. Such lines are checked here against the statement's documented
// shape — extension <alias or 'registry reference'> [with {…} on the same line] [as <name>] —
// and then blanked (replaced by spaces, so every other line and column keeps its position)
// before parsing.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createRequire } from 'node:module';
import { Parser, Language } from 'web-tree-sitter';

const require = createRequire(import.meta.url);

const EXTENSION_LINE =
  /^extension\s+(?:[A-Za-z_][A-Za-z0-9_]*|'[^'\r\n]+')(?:\s+with\s+\{[^\r\n]*\})?(?:\s+as\s+[A-Za-z_][A-Za-z0-9_]*)?\s*(?:\/\/.*)?$/;

/** Returns every .bicep file under dir, sorted. */
function bicepFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...bicepFiles(path));
    else if (name.endsWith('.bicep')) out.push(path);
  }
  return out;
}

/** Checks and blanks `extension` statements; returns [text, problems]. */
function blankExtensions(text) {
  const problems = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (!/^extension\b/.test(line)) continue;
    if (!EXTENSION_LINE.test(line)) {
      problems.push({ line: i + 1, column: 1, message: 'malformed extension statement' });
      continue;
    }
    lines[i] = ' '.repeat(lines[i].length);
  }
  return [lines.join('\n'), problems];
}

/** Collects ERROR and MISSING nodes under node. */
function syntaxProblems(node, out) {
  if (node.isMissing) {
    out.push({
      line: node.startPosition.row + 1,
      column: node.startPosition.column + 1,
      message: `missing ${node.type}`,
    });
  } else if (node.type === 'ERROR') {
    const snippet = node.text.split('\n')[0].slice(0, 60);
    out.push({
      line: node.startPosition.row + 1,
      column: node.startPosition.column + 1,
      message: `syntax error near ${JSON.stringify(snippet)}`,
    });
  }
  if (!node.hasError && !node.isMissing) return out;
  for (const child of node.children) syntaxProblems(child, out);
  return out;
}

async function main() {
  const dirs = process.argv.slice(2);
  if (dirs.length === 0) dirs.push('infra');

  await Parser.init();
  const language = await Language.load(require.resolve('tree-sitter-bicep/tree-sitter-bicep.wasm'));
  const parser = new Parser();
  parser.setLanguage(language);

  let files = 0;
  let failures = 0;
  for (const dir of dirs) {
    for (const file of bicepFiles(dir)) {
      files++;
      const [text, problems] = blankExtensions(readFileSync(file, 'utf8'));
      const tree = parser.parse(text);
      syntaxProblems(tree.rootNode, problems);
      tree.delete();
      for (const p of problems.sort((a, b) => a.line - b.line || a.column - b.column)) {
        failures++;
        console.error(`${relative(process.cwd(), file)}:${p.line}:${p.column}: ${p.message}`);
      }
    }
  }
  if (files === 0) {
    console.error(`bicep-check: no .bicep files under ${dirs.join(', ')}`);
    process.exit(2);
  }
  if (failures > 0) {
    console.error(`bicep-check: ${failures} syntax problem(s) in ${files} file(s)`);
    process.exit(1);
  }
  console.log(`bicep-check: ${files} file(s) parsed cleanly`);
}

main().catch((err) => {
  console.error(`bicep-check: ${err.stack || err}`);
  process.exit(2);
});
