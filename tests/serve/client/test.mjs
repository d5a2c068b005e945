// The official `openai` npm client against a running `pocketlm serve`.
// Usage: node test.mjs   with PLM_BASE_URL (http://127.0.0.1:PORT/v1), PLM_BASE_ID, PLM_ADAPTERS (two names,
// comma-separated), PLM_POCKETLM, PLM_MODEL, PLM_ADAPTER_PATH (the first adapter's file, for `pocketlm run`),
// PLM_API_KEY (one of the server's keys), and files in the server's --adapter-dir, by name: PLM_ADAPTER_FILE (the
// first adapter), PLM_NOT_ADAPTER_FILE (a model, not an adapter), PLM_MISMATCHED_ADAPTER_FILE (optional: an
// adapter of another base).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const baseURL = env('PLM_BASE_URL');
const baseId = env('PLM_BASE_ID');
const [adapterA, adapterB] = env('PLM_ADAPTERS').split(',');
const apiKey = env('PLM_API_KEY');
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });
const messages = [{ role: 'user', content: 'reverse: red cat dog ->' }];
const prompt = 'reverse: red cat dog ->';

async function step(name, fn) {
  const t0 = Date.now();
  await fn();
  console.log(`ok   ${name} (${Date.now() - t0} ms)`);
}

await step('API key: a wrong key -> 401 AuthenticationError', async () => {
  const wrong = new OpenAI({ baseURL, apiKey: `${apiKey}-wrong`, maxRetries: 0 });
  const isAuthError = (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    assert.equal(e.type, 'invalid_request_error');
    assert.ok(!e.message.includes(apiKey), 'the error repeats the key');
    return true;
  };
  await assert.rejects(async () => wrong.models.list(), isAuthError);
  await assert.rejects(wrong.chat.completions.create({ model: baseId, messages: [{ role: 'user', content: 'x' }] }),
    isAuthError);
});

await step('models: the base and both adapters', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids.sort(), [baseId, adapterA, adapterB].sort());
});

await step('chat completion with usage', async () => {
  const r = await client.chat.completions.create({ model: baseId, messages, max_tokens: 8, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

await step('streaming chat equals the same request unstreamed', async () => {
  const req = { model: adapterA, messages, max_tokens: 10, temperature: 0 };
  const whole = await client.chat.completions.create(req);
  const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const c of stream) {
    assert.equal(c.object, 'chat.completion.chunk');
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      text += ch.delta.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    ++chunks;
  }
  assert.ok(chunks >= 3, `only ${chunks} chunks`);
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  // The same prompt under the same adapter again: all but its last token come from the prefix cache.
  assert.deepEqual({ ...usage, prompt_tokens_details: undefined }, { ...whole.usage, prompt_tokens_details: undefined });
  assert.equal(usage.prompt_tokens_details.cached_tokens, usage.prompt_tokens - 1);
});

// The model has no chat template: server and `pocketlm run --chat` choose the same fallback, so their greedy
// replies agree; chat requests for the base and both adapters at once each get what they get alone.
await step('mixed-adapter chat in one batch equals each alone and pocketlm run --chat', async () => {
  const chat = (model) => client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0 })
    .then((r) => r.choices[0].message.content);
  const alone = [];
  for (const m of [baseId, adapterA, adapterB]) alone.push(await chat(m));
  const together = await Promise.all([baseId, adapterA, adapterB, adapterA].map(chat));
  assert.deepEqual(together, [...alone, alone[1]]);
  assert.notEqual(alone[1], alone[0], 'the adapter does not change the chat reply (test is vacuous)');
  const out = execFileSync(env('PLM_POCKETLM'), ['run', '-m', env('PLM_MODEL'), '--lora', env('PLM_ADAPTER_PATH'),
    '--chat', '-p', messages[0].content, '-n', '8', '--temp', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  assert.equal(out.toString('utf8'), alone[1] + '\n');
});

await step('completions (plain prompt)', async () => {
  const r = await client.completions.create({ model: baseId, prompt, max_tokens: 6, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.equal(r.usage.completion_tokens <= 6, true);
});

// Greedy text of `pocketlm run` for the same prompt (it prints the prompt, the continuation and a newline).
function runCli(extra) {
  const out = execFileSync(env('PLM_POCKETLM'), ['run', '-m', env('PLM_MODEL'), ...extra, '-p', prompt, '-n', '8',
    '--temp', '0'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString('utf8');
  assert.ok(out.startsWith(prompt) && out.endsWith('\n'), JSON.stringify(out));
  return out.slice(prompt.length, -1);
}

await step('adapter selection by model equals pocketlm run --lora, and differs from the base', async () => {
  const greedy = (model) => client.completions.create({ model, prompt, max_tokens: 8, temperature: 0 })
    .then((r) => r.choices[0].text);
  const [base, withA] = await Promise.all([greedy(baseId), greedy(adapterA)]);
  assert.equal(withA, runCli(['--lora', env('PLM_ADAPTER_PATH')]));
  assert.equal(base, runCli([]));
  assert.notEqual(withA, base, 'the adapter does not change the output (test is vacuous)');
  // The `lora` extension with scale 0 is the base again.
  const r = await client.completions.create({ model: baseId, prompt, max_tokens: 8, temperature: 0,
    lora: [{ name: adapterA, scale: 0 }] });
  assert.equal(r.choices[0].text, base);
});

await step('unknown model -> 404 NotFoundError', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages }), (e) => {
    assert.ok(e instanceof OpenAI.APIError);
    assert.equal(e.status, 404);
    assert.equal(e.error?.code ?? e.code, 'model_not_found');
    return true;
  });
});

await step('bad requests -> 400 BadRequestError', async () => {
  for (const extra of [{ n: 2 }, { max_tokens: 0 }, { temperature: -1 }]) {
    await assert.rejects(client.chat.completions.create({ model: baseId, messages, ...extra }),
      (e) => e instanceof OpenAI.BadRequestError);
  }
});

await step('16 concurrent requests with mixed adapters all succeed, each as it does alone', async () => {
  const models = [baseId, adapterA, adapterB];
  const one = (i) => client.completions.create({ model: models[i % 3], prompt: `${prompt} ${i % 4}`,
    max_tokens: 12, temperature: 0 }).then((r) => r.choices[0].text);
  const alone = [];
  for (let i = 0; i < 6; ++i) alone.push(await one(i));
  const together = await Promise.all(Array.from({ length: 16 }, (_, i) => one(i)));
  together.forEach((t, i) => {
    if (i < 6) assert.equal(t, alone[i], `request ${i}`);
    // Same model and prompt as an earlier request: the same greedy text.
    if (i >= 12) assert.equal(t, together[i - 12], `request ${i}`);
  });
});

// Endpoints outside the OpenAI API, with plain fetch.
const root = baseURL.replace(/\/v1$/, '');
const call = async (method, path, body) => {
  const r = await fetch(root + path, { method, headers: { 'content-type': 'application/json',
    authorization: `Bearer ${apiKey}` },
    body: typeof body === 'string' ? body : body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
};

await step('health', async () => {
  const r = await call('GET', '/health');
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'ok');
});

await step('admin: load by name in the adapter directory, use, unload; mismatch and bad bodies are 4xx', async () => {
  let r = await call('POST', '/admin/adapters', { name: 'extra', path: env('PLM_ADAPTER_FILE') });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes('extra'));
  const a = await client.completions.create({ model: 'extra', prompt, max_tokens: 8, temperature: 0 });
  const b = await client.completions.create({ model: adapterA, prompt, max_tokens: 8, temperature: 0 });
  assert.equal(a.choices[0].text, b.choices[0].text);  // the same file under another name
  r = await call('POST', '/admin/adapters', { name: 'extra', path: env('PLM_ADAPTER_FILE') });
  assert.equal(r.status, 400);  // the name is taken
  r = await call('DELETE', '/admin/adapters/extra');
  assert.equal(r.status, 200);
  r = await call('DELETE', '/admin/adapters/extra');
  assert.equal(r.status, 404);
  await assert.rejects(client.completions.create({ model: 'extra', prompt }), (e) => e.status === 404);
  // The base model is not an adapter: the checker's message comes back.
  r = await call('POST', '/admin/adapters', { name: 'wrong', path: env('PLM_NOT_ADAPTER_FILE') });
  assert.ok(r.status >= 400 && r.status < 500, JSON.stringify(r.json));
  assert.ok(r.json.error.message.length > 0);
  // A file outside the directory, even an adapter that fits, by its absolute path: refused, naming the field.
  r = await call('POST', '/admin/adapters', { name: 'outside', path: env('PLM_ADAPTER_PATH') });
  assert.equal(r.status, 400, JSON.stringify(r.json));
  assert.equal(r.json.error.param, 'path');
  if (process.env.PLM_MISMATCHED_ADAPTER_FILE) {
    r = await call('POST', '/admin/adapters', { name: 'wrong', path: process.env.PLM_MISMATCHED_ADAPTER_FILE });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(r.json.error.message, /does not fit the base/);
  }
  r = await call('POST', '/admin/adapters', '{"name": 1}');
  assert.equal(r.status, 400);
});

await step('limits: body size 413, prompt beyond the context 400, max_tokens cap 400, unknown route 404', async () => {
  let r = await call('POST', '/v1/completions', { prompt: 'x'.repeat(2 << 20) });
  assert.equal(r.status, 413);
  assert.equal(r.json.error.code, 'request_too_large');
  r = await call('POST', '/v1/completions', { prompt: 'red cat dog '.repeat(2000) });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'context_length_exceeded');
  r = await call('POST', '/v1/completions', { prompt, max_tokens: 1 << 30 });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'max_tokens');
  r = await call('POST', '/v1/chat/completions', '{"messages": [');
  assert.equal(r.status, 400);
  r = await call('GET', '/v2/nothing');
  assert.equal(r.status, 404);
});

console.log('openai client test: OK');
