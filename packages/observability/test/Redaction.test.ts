import { REDACTED, redact, redactDeep } from "@cowork/observability"
import { assert, describe, it } from "@effect/vitest"

/** A small seeded generator so every run plants the same canaries and a failure is reproducible. */
const generator = (seed: number) => {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  const pick = <A>(items: ReadonlyArray<A>): A => items[int(0, items.length - 1)]!
  const chars = (alphabet: string, length: number) =>
    Array.from({ length }, () => alphabet[int(0, alphabet.length - 1)]).join("")
  /** Random text that always mixes letters and digits, so it is recognisable and cannot occur by chance. */
  const canary = (length: number, alphabet = ALNUM) => `${chars("ABCDEFGHJKLMNPQRSTUVWXYZ", 2)}${int(10, 99)}${chars(alphabet, length - 4)}`
  return { int, pick, chars, canary }
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
const HEX = "0123456789abcdef"

/** Ordinary operator-facing text: every line must pass through redaction unchanged. */
const ORDINARY = [
  "Session ses_01HZX4 created for org org_7 at 2024-05-01T10:00:00.000Z",
  "GET /api/sessions/:id/events 200 in 12ms",
  "POST /api/workspace returned 403 for a tenant token",
  "worker wrk_a claimed lease epoch 7 (expires in 15000ms)",
  "See https://docs.example.com/runbooks/cloud-operations#worker-backlog for details",
  "next page: https://example.com/api/sessions?limit=50&cursor=c_12&status=idle",
  "https://example.com/?monkey=banana&keyboard=qwerty",
  "desk-top risk-assessment task-runner ask-me",
  "sk-learn is a short name, and so is sk-1",
  "Bearer authentication is required for /api/runtime/status",
  "Basic authentication failed",
  "The token expired; request a new one from the dashboard",
  "password reset requested by the org owner",
  "installed effect@4.1.0 with @effect/vitest and @effect/sql-pg",
  "relative paths src/home/alice.ts and ./workspace/config.json stay",
  "/usr/local/bin/node /tmp/cowork-test-pg-123 /var/lib/postgresql/data",
  "SELECT * FROM cloud_worker_leases WHERE expires_at < now() FOR UPDATE SKIP LOCKED",
  `open_cowork_cloud_http_requests_total{method="GET",status="200",route="/api/sessions/:id",role="web"} 3`,
  "commit 8813e2c3f0a1b2c4d5e6f7a8b9c0d1e2f3a4b5c6 on main",
  "request 550e8400-e29b-41d4-a716-446655440000 finished",
  "listening on http://127.0.0.1:8787 and ws://localhost:8788/stream",
  "postgres://db.internal:5432/cowork has no credentials in it",
  "ratio 3:2 at 10:30:00, heartbeat interval 5000",
  "user alice signed in; @channel heads-up",
  "OPEN_COWORK_CLOUD_SECRET_KEY_REF=env:COWORK_KEY is a reference, not a secret",
  `{"status":"idle","lastSequence":42,"route":"/api/sessions/:id/prompt","fresh":true}`,
  "StaleOwner: session ses_9 epoch 3 operation renew",
  "reaper drained 100 expired leases (drain cap hit)",
  "C:\\Program Files\\nodejs\\node.exe"
]

interface Canary {
  readonly kind: string
  /** The planted text as it would appear in a log or body. */
  readonly text: string
  /** Substrings that must not survive (the secret parts). */
  readonly secrets: ReadonlyArray<string>
  /** Substrings that must survive (the diagnostic shape). */
  readonly keeps?: ReadonlyArray<string>
}

type Gen = ReturnType<typeof generator>

const canaries: ReadonlyArray<(g: Gen) => Canary> = [
  (g) => {
    const secret = g.canary(g.int(20, 60), `${ALNUM}-._~+/`)
    return { kind: "bearer", text: `${g.pick(["Authorization: ", "authorization=", "sent ", ""])}Bearer ${secret}`, secrets: [secret] }
  },
  (g) => {
    const id = g.canary(12)
    const secret = g.canary(32, `${ALNUM}_-`)
    const prefix = g.pick(["occ", "ocw"])
    return { kind: "cowork-token", text: `${prefix}_${id}_${secret}`, secrets: [id, secret], keeps: [`${prefix}_`] }
  },
  (g) => {
    const secret = g.canary(g.int(24, 64), `${ALNUM}_-`)
    const key = `${g.pick(["sk-", "sk-proj-", "sk-ant-api03-", "sk-svcacct-"])}${secret}`
    return { kind: "provider-key", text: key, secrets: [secret] }
  },
  (g) => {
    const secret = `AKIA${g.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)}`
    return { kind: "aws-access-key", text: `aws_access_key_id ${secret}`, secrets: [secret] }
  },
  (g) => {
    const secret = g.canary(36, ALNUM)
    return { kind: "github-token", text: `${g.pick(["ghp_", "gho_", "github_pat_"])}${secret}`, secrets: [secret] }
  },
  (g) => {
    const user = `u${g.canary(10)}`
    const password = g.canary(g.int(12, 30), `${ALNUM}%!*`)
    const host = `db-${g.int(1, 99)}.internal.example.net`
    const scheme = g.pick(["postgres", "postgresql", "mysql", "redis", "mongodb+srv", "https"])
    return {
      kind: "database-url",
      text: `${scheme}://${user}:${password}@${host}:5432/cowork?sslmode=require`,
      secrets: [user, password],
      keeps: [`${scheme}://`, `@${host}:5432/cowork?sslmode=require`]
    }
  },
  (g) => {
    const signature = g.chars(HEX, 64)
    const credential = `AKIA${g.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)}`
    const securityToken = g.canary(40)
    return {
      kind: "s3-signed-url",
      text: `https://bucket.s3.amazonaws.com/ckpt/${g.chars(HEX, 16)}?X-Amz-Algorithm=AWS4-HMAC-SHA256` +
        `&X-Amz-Credential=${credential}%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z` +
        `&X-Amz-Expires=900&X-Amz-Security-Token=${securityToken}&X-Amz-Signature=${signature}`,
      secrets: [signature, credential, securityToken],
      keeps: ["https://bucket.s3.amazonaws.com/ckpt/", "X-Amz-Signature=", "X-Amz-Expires=900"]
    }
  },
  (g) => {
    const sig = g.canary(40, `${ALNUM}%`)
    const token = g.canary(24)
    return {
      kind: "sas-or-token-url",
      text: `https://acct.blob.core.windows.net/c/blob?sv=2022-11-02&se=2030-01-01&sig=${sig}&token=${token}`,
      secrets: [sig, token],
      keeps: ["https://acct.blob.core.windows.net/c/blob?sv=2022-11-02"]
    }
  },
  (g) => {
    const local = `${g.pick(["alice", "bob", "ops"])}.${g.canary(8).toLowerCase()}`
    const domain = `${g.canary(6).toLowerCase()}.${g.pick(["com", "io", "co.uk", "dev"])}`
    return { kind: "email", text: `${local}@${domain}`, secrets: [local, domain] }
  },
  (g) => {
    const user = `u${g.canary(9).toLowerCase()}`
    const project = g.canary(10)
    const path = g.pick([
      `/home/${user}/src/${project}/index.ts`,
      `/Users/${user}/Library/${project}`,
      `/root/.config/${project}`,
      `/workspace/${project}/notes.md`,
      `file:///home/${user}/${project}`,
      `C:\\Users\\${user}\\${project}`
    ])
    return { kind: "host-path", text: path, secrets: [path.includes(user) ? user : project, project] }
  },
  (g) => {
    const secret = g.canary(g.int(10, 30))
    const key = g.pick(["password", "DB_PASSWORD", "client_secret", "apiKey", "api_key", "access_token"])
    return { kind: "secret-assignment", text: g.pick([`${key}=${secret}`, `"${key}": "${secret}"`, `${key}: ${secret}`]), secrets: [secret], keeps: [key] }
  },
  (g) => {
    const jwt = `eyJ${g.canary(20)}.eyJ${g.canary(40)}.${g.canary(43, `${ALNUM}_-`)}`
    return { kind: "jwt", text: jwt, secrets: [jwt.slice(3)] }
  },
  (g) => {
    const cookie = g.canary(30)
    return { kind: "cookie-header", text: `Cookie: cowork_session=${cookie}; theme=dark`, secrets: [cookie], keeps: ["Cookie: "] }
  },
  (g) => {
    const secret = g.canary(33, `${ALNUM}_-`)
    const token = `${g.int(10_000_000, 9_999_999_999)}:AA${secret}`
    return {
      kind: "telegram-bot-token",
      text: g.pick([token, `https://api.telegram.org/bot${token}/sendMessage`, `bot token ${token}`]),
      secrets: [secret]
    }
  }
]

const WRAPPERS: ReadonlyArray<(text: string) => string> = [
  (t) => t,
  (t) => `"${t}"`,
  (t) => `(${t})`,
  (t) => `${t},`,
  (t) => `'${t}'`,
  (t) => `<${t}>`,
  (t) => `\n${t}\n`,
  (t) => `[${t}]`,
  (t) => `{"detail":"${t}"}`
]

describe("redact", () => {
  it("leaves ordinary operator text exactly as it was", () => {
    for (const line of ORDINARY) assert.strictEqual(redact(line), line)
    assert.strictEqual(redact(ORDINARY.join("\n")), ORDINARY.join("\n"))
  })

  it("masks every generated canary in any surrounding text, keeping the text around it", () => {
    const g = generator(20240501)
    let planted = 0
    for (let round = 0; round < 60; round++) {
      for (const make of canaries) {
        const canary = make(g)
        const before = g.pick(ORDINARY)
        const after = g.pick(ORDINARY)
        const input = `${before} ${g.pick(WRAPPERS)(canary.text)} ${after}`
        const output = redact(input)
        planted++
        for (const secret of canary.secrets) {
          assert.notInclude(output, secret, `${canary.kind} leaked from: ${input}`)
        }
        for (const kept of canary.keeps ?? []) assert.include(output, kept, `${canary.kind} lost its shape: ${output}`)
        assert.isTrue(output.startsWith(before), `text before a ${canary.kind} changed: ${output}`)
        if (!["cookie-header", "bearer"].includes(canary.kind)) {
          assert.isTrue(output.endsWith(after), `text after a ${canary.kind} changed: ${output}`)
        }
        assert.strictEqual(redact(output), output, "redaction is idempotent")
      }
    }
    assert.strictEqual(planted, 60 * canaries.length)
  })

  it("masks several canaries planted in the same line", () => {
    const g = generator(7)
    for (let round = 0; round < 40; round++) {
      const planted = Array.from({ length: 4 }, () => g.pick(canaries)(g))
      const output = redact(planted.map((c) => c.text).join(" | "))
      for (const canary of planted) for (const secret of canary.secrets) assert.notInclude(output, secret, canary.kind)
    }
  })

  it("keeps a database URL's scheme, host and database but not its user or password", () => {
    assert.strictEqual(
      redact("connecting to postgres://cowork:hunter2-Secret@db.internal:5432/cowork failed"),
      `connecting to postgres://${REDACTED}@db.internal:5432/cowork failed`
    )
    assert.strictEqual(redact("postgres://u:p@ss@host/db"), `postgres://${REDACTED}@host/db`)
  })
})

describe("redactDeep", () => {
  it("masks secret-named fields whole and redacts every nested string, leaving the input untouched", () => {
    const error = new Error("provider rejected sk-ant-api03-AAAA1111bbbb2222cccc3333")
    const input = {
      headers: { authorization: "Bearer abc.def.123456", "x-request-id": "req_1", Cookie: "s=1" },
      config: { databaseUrl: "postgres://app:s3cr3tPass@db:5432/x", password: "hunter2", poolSize: 10, enabled: true },
      owners: ["ops@example.com", "alice"],
      nested: [{ apiKey: "plain-key-value", note: "see /home/alice/notes.txt" }],
      at: new Date("2024-05-01T00:00:00.000Z"),
      sequence: 42n,
      error
    }
    const output = redactDeep(input) as any
    const text = JSON.stringify(output)
    for (const secret of ["abc.def.123456", "s=1", "s3cr3tPass", "hunter2", "ops@example.com", "plain-key-value", "alice/notes", "AAAA1111"]) {
      assert.notInclude(text, secret)
    }
    assert.strictEqual(output.headers["x-request-id"], "req_1")
    assert.strictEqual(output.headers.authorization, REDACTED)
    assert.strictEqual(output.config.poolSize, 10)
    assert.strictEqual(output.config.enabled, true)
    assert.strictEqual(output.owners[1], "alice")
    assert.strictEqual(output.at, "2024-05-01T00:00:00.000Z")
    assert.strictEqual(output.sequence, "42")
    assert.strictEqual(output.error.name, "Error")
    assert.strictEqual(input.config.password, "hunter2", "the input is not mutated")
  })

  it("survives cycles", () => {
    const node: Record<string, unknown> = { name: "loop", token: "occ_abcdefgh_secretsecretsecretsecret" }
    node.self = node
    const output = redactDeep(node) as Record<string, unknown>
    assert.strictEqual(output.self, "[Circular]")
    assert.strictEqual(output.token, REDACTED)
  })
})

describe("redact remembers only clean text", () => {
  it("masks a secret every time it is seen, and returns clean text unchanged every time", () => {
    const secret = "occ_abcdef123456_Zx9"
    const line = `token ${secret} used`
    for (let i = 0; i < 3; i++) {
      assert.strictEqual(redact(secret), `occ_${REDACTED}`)
      assert.strictEqual(redact(line), `token occ_${REDACTED} used`)
      assert.strictEqual(redact("command completed"), "command completed")
    }
  })

  it("still masks after the remembered set filled and was emptied", () => {
    for (let i = 0; i < 5_000; i++) redact(`clean text ${i}`)
    assert.strictEqual(redact("Bearer abcdefgh12345678"), `Bearer ${REDACTED}`)
    assert.strictEqual(redact("clean text 4999"), "clean text 4999")
  })
})
