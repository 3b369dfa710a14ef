// The managers' playground: GraphiQL with a sign-in box that keeps the access token fresh
// and opens with the everyday manager operations (schema/operations/manager/). Everything
// it needs is in this bundle, served by the wuye binary: nothing is fetched elsewhere.
import React, { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/graphiql.css';
import operations from 'wuye:operations';

const STORE = 'wuye.playground.session';
const ENDPOINT = '/graphql';
const WS = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql/ws`;

const SIGN_IN = `mutation PlaygroundSignIn($login: String!, $password: String!, $captchaId: String, $captchaAnswer: String) {
  signIn(input: {login: $login, password: $password, captchaId: $captchaId, captchaAnswer: $captchaAnswer, client: PLAYGROUND}) {
    accessToken refreshToken expiresIn mustChangePassword user { name username }
  }
}`;
const REFRESH = `mutation PlaygroundRefresh($token: String!) {
  refreshToken(input: {refreshToken: $token}) { accessToken refreshToken expiresIn mustChangePassword user { name username } }
}`;
const CAPTCHA = `mutation PlaygroundCaptcha { requestCaptcha(input: {}) { id imageBase64 } }`;
const SIGN_OUT = `mutation PlaygroundSignOut($token: String!) { signOut(input: {refreshToken: $token}) { ok } }`;

function load() {
  try {
    return JSON.parse(localStorage.getItem(STORE)) || null;
  } catch {
    return null;
  }
}

function save(session) {
  if (session) localStorage.setItem(STORE, JSON.stringify(session));
  else localStorage.removeItem(STORE);
}

async function call(query, variables, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(ENDPOINT, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return res.json();
}

function sessionFrom(payload) {
  return {
    accessToken: payload.accessToken,
    refreshToken: payload.refreshToken,
    expiresAt: Date.now() + payload.expiresIn * 1000,
    name: payload.user?.name || payload.user?.username || '',
    mustChangePassword: payload.mustChangePassword,
  };
}

function SignInBox({ session, onSession }) {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [captcha, setCaptcha] = useState(null);
  const [answer, setAnswer] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const newCaptcha = async () => {
    const r = await call(CAPTCHA, {});
    setCaptcha(r.data?.requestCaptcha || null);
    setAnswer('');
  };

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const r = await call(SIGN_IN, { login, password, captchaId: captcha?.id, captchaAnswer: captcha ? answer : undefined });
      if (r.errors?.length) {
        const err = r.errors[0];
        setError(err.message);
        if (err.extensions?.details?.captchaRequired) await newCaptcha();
        return;
      }
      setCaptcha(null);
      setPassword('');
      onSession(sessionFrom(r.data.signIn));
    } catch (x) {
      setError(String(x));
    } finally {
      setBusy(false);
    }
  };

  const signOut = async () => {
    if (session?.refreshToken) await call(SIGN_OUT, { token: session.refreshToken }, session.accessToken).catch(() => {});
    onSession(null);
  };

  if (session) {
    return (
      <div className="wuye-bar" data-testid="signed-in">
        <strong>wuye 物业</strong>
        <span>
          已登录 Signed in: <b>{session.name}</b>
          {session.mustChangePassword ? ' · 请先修改初始密码 (changePassword)' : ''}
        </span>
        <button type="button" onClick={signOut}>退出 Sign out</button>
      </div>
    );
  }
  return (
    <form className="wuye-bar" onSubmit={submit} data-testid="sign-in">
      <strong>wuye 物业</strong>
      <input name="login" placeholder="用户名或手机号 Username or phone" value={login} onChange={(e) => setLogin(e.target.value)} autoComplete="username" />
      <input name="password" type="password" placeholder="密码 Password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="current-password" />
      {captcha && (
        <>
          <img alt="captcha" src={`data:image/png;base64,${captcha.imageBase64}`} onClick={newCaptcha} />
          <input name="captcha" placeholder="验证码 Captcha" value={answer} onChange={(e) => setAnswer(e.target.value)} />
        </>
      )}
      <button type="submit" disabled={busy}>登录 Sign in</button>
      {error && <span className="wuye-error">{error}</span>}
    </form>
  );
}

function App() {
  const [session, setSession] = useState(load);
  const sessionRef = useRef(session);
  sessionRef.current = session;

  const update = useCallback((s) => {
    save(s);
    setSession(s);
  }, []);

  const refresh = useCallback(async () => {
    const s = sessionRef.current;
    if (!s?.refreshToken) return null;
    const r = await call(REFRESH, { token: s.refreshToken }).catch(() => null);
    if (!r?.data?.refreshToken) {
      update(null);
      return null;
    }
    const next = sessionFrom(r.data.refreshToken);
    update(next);
    return next;
  }, [update]);

  // refresh a minute before the access token expires
  useEffect(() => {
    if (!session) return undefined;
    const wait = Math.max(session.expiresAt - Date.now() - 60_000, 1_000);
    const t = setTimeout(refresh, wait);
    return () => clearTimeout(t);
  }, [session, refresh]);

  const fetcher = useMemo(() => {
    const base = createGraphiQLFetcher({
      url: ENDPOINT,
      subscriptionUrl: WS,
      wsConnectionParams: () => ({ accessToken: sessionRef.current?.accessToken }),
    });
    return async (params, opts = {}) => {
      const run = (token) =>
        base(params, { ...opts, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(opts.headers || {}) } });
      const result = await run(sessionRef.current?.accessToken);
      const expired = result?.errors?.some((e) => e.extensions?.reason === 'TOKEN_EXPIRED');
      if (expired) {
        const next = await refresh();
        if (next) return run(next.accessToken);
      }
      return result;
    };
  }, [refresh]);

  const defaultTabs = useMemo(() => operations.map((o) => ({ query: o.text })), []);

  return (
    <div className="wuye-app">
      <SignInBox session={session} onSession={update} />
      <div className="wuye-graphiql">
        <GraphiQL fetcher={fetcher} defaultTabs={defaultTabs} defaultEditorToolsVisibility="variables" isHeadersEditorEnabled />
      </div>
    </div>
  );
}

const style = document.createElement('style');
style.textContent = `
  html, body, #root { height: 100%; margin: 0; }
  .wuye-app { display: flex; flex-direction: column; height: 100%; }
  .wuye-graphiql { flex: 1; min-height: 0; }
  .wuye-bar { display: flex; gap: 8px; align-items: center; padding: 6px 12px; font: 14px system-ui, sans-serif;
              border-bottom: 1px solid #ddd; background: #f7f7f9; flex-wrap: wrap; }
  .wuye-bar input { padding: 4px 6px; }
  .wuye-bar img { height: 32px; cursor: pointer; }
  .wuye-error { color: #b00020; }
`;
document.head.appendChild(style);
createRoot(document.getElementById('root')).render(<App />);
