import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OPTIONS, type OptionDef } from '../../src/config/options';

// The configuration table of README.md (between the config-table markers) must list
// exactly the options of src/config/options.ts, in the same order, with the same type, default and meaning.
const top = path.join(__dirname, '../../..');
const BEGIN = '<!-- config-table:begin -->';
const END = '<!-- config-table:end -->';

function documentWithTable(): { file: string; text: string } {
  const readme = path.join(top, 'README.md');
  if (fs.existsSync(readme)) {
    const text = fs.readFileSync(readme, 'utf8');
    if (text.includes(BEGIN)) return { file: 'README.md', text };
  }
  throw new Error('README.md has no configuration table markers');
}

/** The row the table must carry for an option (also what a maintainer pastes when adding one). */
export function tableRow(o: OptionDef): string {
  const def = o.def === null ? 'None' : o.type === 'switch' ? (o.def ? 'y' : 'n') : String(o.def);
  return `| \`${o.name}\` | ${o.type} | \`${def}\` | ${o.meaning.replace(/\|/g, '\\|')} |`;
}

test('the documented configuration table matches the option table', () => {
  const { file, text } = documentWithTable();
  const b = text.indexOf(BEGIN); const e = text.indexOf(END);
  assert.ok(b >= 0 && e > b, `${file}: markers ${BEGIN} … ${END} missing`);
  const rows = text.slice(b + BEGIN.length, e).split('\n').map((l) => l.trim()).filter((l) => l.startsWith('| `'));
  const documented = rows.map((r) => /^\| `([^`]+)`/.exec(r)![1]);
  const missing = OPTIONS.map((o) => o.name).filter((n) => !documented.includes(n));
  const extra = documented.filter((n) => !OPTIONS.some((o) => o.name === n));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${file}: table and src/config/options.ts differ`);
  OPTIONS.forEach((o, i) => assert.equal(rows[i], tableRow(o), `${file}: row of ${o.name}`));
});
