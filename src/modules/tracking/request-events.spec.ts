import { expandRequestEvents, RequestEventBlockBuilder } from './request-events';
import type { RequestActor, RequestRoute } from './request-events';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const getSession: RequestRoute = {
  name: 'GET /api/session',
  propertiesStart: '{"method":"GET","route":"/api/session","status":',
};
const putData: RequestRoute = {
  name: 'PUT /api/session/data/:key',
  propertiesStart: '{"method":"PUT","route":"/api/session/data/:key","status":',
};
const alice: RequestActor = { userId: 'u-1', sessionId: 's-1', ip: '10.0.0.0', userAgent: 'A' };
const guest: RequestActor = { userId: null, sessionId: 's-2', ip: null, userAgent: null };

describe('RequestEventBlockBuilder and expandRequestEvents', () => {
  it('expands each request into the row the writer inserts, in request order', () => {
    const builder = new RequestEventBlockBuilder();
    builder.add(alice, getSession, 200, 1.25, 1_000);
    builder.add(guest, putData, 413, 0, 2_000);
    builder.add({ ...alice }, getSession, 500, 12.5, 3_000);
    expect(builder.size).toBe(3);
    const rows = expandRequestEvents(builder.block);
    expect(rows.map(({ eventId: _id, ...row }) => row)).toEqual([
      {
        dedupeKey: null,
        userId: 'u-1',
        sessionId: 's-1',
        type: 'api_request',
        name: 'GET /api/session',
        path: null,
        properties: '{"method":"GET","route":"/api/session","status":200,"duration_ms":1.25}',
        ip: '10.0.0.0',
        userAgent: 'A',
        occurredAt: 1_000,
        receivedAt: 1_000,
      },
      {
        dedupeKey: null,
        userId: null,
        sessionId: 's-2',
        type: 'api_request',
        name: 'PUT /api/session/data/:key',
        path: null,
        properties:
          '{"method":"PUT","route":"/api/session/data/:key","status":413,"duration_ms":0}',
        ip: null,
        userAgent: null,
        occurredAt: 2_000,
        receivedAt: 2_000,
      },
      expect.objectContaining({
        userId: 'u-1',
        properties: '{"method":"GET","route":"/api/session","status":500,"duration_ms":12.5}',
        occurredAt: 3_000,
      }),
    ]);
    // The properties are the JSON of the documented object, keys in order.
    expect(JSON.parse(rows[0].properties!)).toEqual({
      method: 'GET',
      route: '/api/session',
      status: 200,
      duration_ms: 1.25,
    });
    // A route and an actor seen before are referenced, not stored again.
    expect(builder.block.routes).toHaveLength(2);
    expect(builder.block.actors).toHaveLength(2);
  });

  it('names every row with a distinct UUID, the same in every expansion of a block', () => {
    const builder = new RequestEventBlockBuilder();
    for (let i = 0; i < 300; i++) builder.add(alice, getSession, 200, 1, i);
    const ids = expandRequestEvents(builder.block).map((row) => row.eventId);
    for (const id of ids) expect(id).toMatch(UUID);
    expect(new Set(ids).size).toBe(300);
    // The writer's thread and the live stream expand the same block apart: one id per row.
    const clone = structuredClone(builder.block);
    expect(expandRequestEvents(clone).map((row) => row.eventId)).toEqual(ids);
    // Another job's block: other ids.
    const other = new RequestEventBlockBuilder();
    other.add(alice, getSession, 200, 1, 0);
    expect(ids).not.toContain(expandRequestEvents(other.block)[0].eventId);
  });

  it('keeps a session whose address or agent changed as another actor', () => {
    const builder = new RequestEventBlockBuilder();
    // Each differs from the one before in one field.
    builder.add(alice, getSession, 200, 1, 1);
    builder.add({ ...alice, userId: null }, getSession, 200, 1, 2);
    builder.add(alice, getSession, 200, 1, 3);
    builder.add({ ...alice, ip: '10.0.1.0' }, getSession, 200, 1, 4);
    builder.add(alice, getSession, 200, 1, 5);
    builder.add({ ...alice, userAgent: 'B' }, getSession, 200, 1, 6);
    const rows = expandRequestEvents(builder.block);
    expect(rows.map((row) => [row.userId, row.ip, row.userAgent])).toEqual([
      ['u-1', '10.0.0.0', 'A'],
      [null, '10.0.0.0', 'A'],
      ['u-1', '10.0.0.0', 'A'],
      ['u-1', '10.0.1.0', 'A'],
      ['u-1', '10.0.0.0', 'A'],
      ['u-1', '10.0.0.0', 'B'],
    ]);
  });

  it('lists the sessions of requests without a user', () => {
    const builder = new RequestEventBlockBuilder();
    builder.add(alice, getSession, 200, 1, 1);
    builder.add(guest, getSession, 200, 1, 2);
    builder.add({ ...guest, sessionId: 's-3' }, getSession, 200, 1, 3);
    const sessions = new Set<string>();
    builder.anonymousSessions(sessions);
    expect([...sessions]).toEqual(['s-2', 's-3']);
  });

  it('counts what a block holds: the numbers per request, and each new actor with its agent', () => {
    const builder = new RequestEventBlockBuilder();
    const first = builder.add(alice, getSession, 200, 1, 1);
    const again = builder.add(alice, getSession, 200, 1, 2);
    const longAgent = builder.add({ ...guest, userAgent: 'x'.repeat(500) }, getSession, 200, 1, 3);
    expect(again).toBe(40);
    expect(first).toBe(40 + 200 + 1);
    expect(longAgent).toBe(40 + 200 + 500);
  });
});
