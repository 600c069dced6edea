import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The compiled script `name` of the module in `dir` (its `__dirname`), to
 * start as a worker thread or a process: beside the module in `dist/`, or,
 * under Jest (whose sources are TypeScript, which a thread or a plain node
 * process cannot load), the build's copy under `dist/<distDir>` (`npm test`
 * and `npm run test:pg` build first). `what` names it in the error.
 */
export function compiledEntry(dir: string, distDir: string, name: string, what: string): string {
  const beside = path.join(dir, name);
  if (existsSync(beside)) return beside;
  const built = path.resolve(__dirname, '../../dist', distDir, name);
  if (existsSync(built)) return built;
  throw new Error(`${what} is not built (no ${built}): run npm run build`);
}
