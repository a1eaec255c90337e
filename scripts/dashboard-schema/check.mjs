// Type-checks dashboard JSON files against the Dashboard type of @grafana/schema (through
// dashboard-json.ts) with the TypeScript compiler, strict, as `tsc --noEmit` would.
//
// Each dashboard becomes a TypeScript module that assigns the JSON, as an object literal, to a
// DashboardJson constant: unlike a JSON import, a literal keeps its string literals ("absolute",
// "row") for the literal unions, and gets excess-property checks. The module is written one key
// or value per line, so that a compiler error's line names the JSON path it is about.
//
// Usage: node check.mjs DASHBOARD.json...
// Prints "ok <file>" or "FAIL <file>" and one "  <path>: <message>" line per error for each;
// exits 1 when any dashboard fails (unreadable JSON included), 2 on a usage error or an
// error in dashboard-json.ts or the installed types.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const toolDir = path.dirname(fileURLToPath(import.meta.url));

/** The module's lines and, for each, the JSON path of the key or value it holds. */
function toModule(dashboard) {
  const lines = ["import type { DashboardJson } from './dashboard-json';", 'const dashboard: DashboardJson = '];
  const paths = ['', ''];
  const emit = (value, at, prefix, suffix, indent) => {
    const pad = '  '.repeat(indent);
    if (value !== null && typeof value === 'object') {
      const entries = Array.isArray(value)
        ? value.map((item, index) => [`${at}[${index}]`, '', item])
        : Object.entries(value).map(([key, item]) => [at ? `${at}.${key}` : key, `${JSON.stringify(key)}: `, item]);
      const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
      lines.push(`${pad}${prefix}${open}`);
      paths.push(at || '(dashboard)');
      entries.forEach(([childAt, key, item], index) =>
        emit(item, childAt, key, index + 1 < entries.length ? ',' : '', indent + 1));
      lines.push(`${pad}${close}${suffix}`);
      paths.push(at || '(dashboard)');
    } else {
      lines.push(`${pad}${prefix}${JSON.stringify(value)}${suffix}`);
      paths.push(at);
    }
  };
  emit(dashboard, '', '', ';', 0);
  lines.push('export default dashboard;', '');
  paths.push('', '');
  return { text: lines.join('\n'), paths };
}

function compilerOptions() {
  const configPath = path.join(toolDir, 'tsconfig.json');
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, toolDir);
  return parsed.options;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node check.mjs DASHBOARD.json...');
  process.exit(2);
}

// The generated modules live in memory beside dashboard-json.ts, so that concurrent runs
// share no files and nothing is left behind.
const modules = new Map();
const unreadable = [];
for (const [index, file] of files.entries()) {
  let dashboard;
  try {
    dashboard = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    unreadable.push(`FAIL ${file}\n  (file): ${error.message}`);
    continue;
  }
  const modulePath = path.join(toolDir, `generated-${index}-${path.basename(file, '.json')}.ts`);
  modules.set(modulePath, { file, ...toModule(dashboard) });
}

const options = compilerOptions();
const host = ts.createCompilerHost(options);
const readFile = host.readFile.bind(host);
const fileExists = host.fileExists.bind(host);
const getSourceFile = host.getSourceFile.bind(host);
host.readFile = (name) => modules.get(path.resolve(name))?.text ?? readFile(name);
host.fileExists = (name) => modules.has(path.resolve(name)) || fileExists(name);
host.getSourceFile = (name, language, ...rest) => {
  const module = modules.get(path.resolve(name));
  return module ? ts.createSourceFile(name, module.text, language, true) : getSourceFile(name, language, ...rest);
};

const program = ts.createProgram([path.join(toolDir, 'dashboard-json.ts'), ...modules.keys()], options, host);
const global = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
const errors = new Map([...modules.keys()].map((modulePath) => [modulePath, []]));
for (const diagnostic of [...global, ...program.getSemanticDiagnostics(), ...program.getSyntacticDiagnostics()]) {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
  const module = diagnostic.file && modules.get(path.resolve(diagnostic.file.fileName));
  if (!module) {
    // An error in dashboard-json.ts or the installed types: no dashboard can be judged.
    const where = diagnostic.file ? `${diagnostic.file.fileName}: ` : '';
    console.error(`error: ${where}${message}`);
    process.exit(2);
  }
  const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
  errors.get(path.resolve(diagnostic.file.fileName)).push(`${module.paths[line] || '(dashboard)'}: ${message}`);
}

let failed = unreadable.length;
for (const line of unreadable) console.log(line);
for (const [modulePath, { file }] of modules) {
  const found = errors.get(modulePath);
  console.log(`${found.length ? 'FAIL' : 'ok  '} ${file}`);
  for (const error of found) console.log(`  ${error}`);
  failed += found.length ? 1 : 0;
}
process.exit(failed ? 1 : 0);
