import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Name and version from package.json (one folder above both src/ and dist/). */
export const APP_INFO: { name: string; version: string } = (() => {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  return { name: pkg.name, version: pkg.version };
})();
