/**
 * The event writer's thread (see SqliteWriterThread): its own connection to
 * the SQLite file, running each group commit it is sent in one write
 * transaction. It loads no Nest or TypeORM code (a few MB instead of about
 * 35).
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { PreparedStatements } from '../../common/database/sqlite-connection.js';
import { insertSqliteBatch, type SqliteJob } from './sqlite-event-batch.js';
import type { WriterReply, WriterRequest, WriterThreadData } from './sqlite-writer-thread.js';

const { path, pragmas } = workerData as WriterThreadData;
const port = parentPort!;
const db = new Database(path, { fileMustExist: true });
for (const pragma of pragmas) db.pragma(pragma);
const statements = new PreparedStatements(() => db);
const commit = db.transaction((jobs: SqliteJob[]) => insertSqliteBatch(statements, jobs));

port.on('message', (request: WriterRequest) => {
  if (request.type === 'close') {
    db.close();
    port.close();
    return;
  }
  let reply: WriterReply;
  try {
    // IMMEDIATE: the write lock first, so that should another process write too, the
    // transaction waits for it instead of failing after it read (see DatabaseService).
    reply = { id: request.id, result: commit.immediate(request.jobs) };
  } catch (error) {
    const { message, code } = error as { message?: string; code?: string };
    reply = { id: request.id, error: { message: message ?? String(error), code } };
  }
  port.postMessage(reply);
});
