import type { TestApp } from './test-app';

/** What the helpers below use of an app: its HTTP client. */
type Http = Pick<TestApp, 'http'>;

export const PASSWORD = 'correct horse battery';

export interface LoggedIn {
  token: string;
  userId: string;
  sessionId: string;
  /** `Cookie` header value carrying the session token. */
  cookie: string;
  /** `Authorization` header value carrying the session token. */
  bearer: string;
  body: Record<string, any>;
  setCookie: string;
}

export async function register(t: Http, username: string, password = PASSWORD) {
  const res = await t.http().post('/auth/register').send({ username, password }).expect(201);
  return res.body.user as { id: string; username: string; role: string };
}

export async function login(
  t: Http,
  username: string,
  password = PASSWORD,
  extra: { remember_me?: boolean; headers?: Record<string, string> } = {},
): Promise<LoggedIn> {
  const req = t.http().post('/auth/login');
  for (const [name, value] of Object.entries(extra.headers ?? {})) req.set(name, value);
  const res = await req
    .send({
      username,
      password,
      ...(extra.remember_me !== undefined ? { remember_me: extra.remember_me } : {}),
    })
    .expect(200);
  const token = res.body.session_id as string;
  const setCookie = ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0] ?? '';
  return {
    token,
    userId: res.body.user_id,
    sessionId: res.body.session.id,
    cookie: `session_id=${token}`,
    bearer: `Bearer ${token}`,
    body: res.body,
    setCookie,
  };
}

export async function registerAndLogin(t: Http, username: string): Promise<LoggedIn> {
  await register(t, username);
  return login(t, username);
}

/** Logs in the bootstrap admin created from ADMIN_USERNAME / ADMIN_PASSWORD. */
export const ADMIN_ENV = { ADMIN_USERNAME: 'root-admin', ADMIN_PASSWORD: 'admin-password-1' };
export const loginAdmin = (t: Http) => login(t, ADMIN_ENV.ADMIN_USERNAME, ADMIN_ENV.ADMIN_PASSWORD);

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
