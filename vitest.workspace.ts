// The list of test projects; vitest.config.ts imports it (vitest 5 reads projects from its config).
export const projects = [
  { extends: true, test: { name: "domain", include: ["packages/domain/test/**/*.test.ts"] } },
  { extends: true, test: { name: "services", include: ["packages/services/test/**/*.test.ts"] } },
  { extends: true, test: { name: "postgres", include: ["packages/postgres/test/**/*.test.ts"] } },
  { extends: true, test: { name: "runtime", include: ["packages/runtime/test/**/*.test.ts"], exclude: ["packages/runtime/test/opencode/**"] } },
  { extends: true, test: { name: "storage", include: ["packages/storage/test/**/*.test.ts"] } },
  { extends: true, test: { name: "secrets", include: ["packages/secrets/test/**/*.test.ts"] } },
  { extends: true, test: { name: "observability", include: ["packages/observability/test/**/*.test.ts"] } },
  { extends: true, test: { name: "web", include: ["apps/web/test/**/*.test.ts"] } },
  { extends: true, test: { name: "worker", include: ["apps/worker/test/**/*.test.ts"] } },
  { extends: true, test: { name: "cli", include: ["apps/cli/test/**/*.test.ts"], exclude: ["apps/cli/test/drills/**"] } },
  { extends: true, test: { name: "scheduler", include: ["apps/scheduler/test/**/*.test.ts"] } },
  { extends: true, test: { name: "gateway", include: ["apps/gateway/test/**/*.test.ts"], exclude: ["apps/gateway/test/drill/**"] } },
  { extends: true, test: { name: "channels", include: ["packages/channels/test/**/*.test.ts"] } },
  // The real opencode binary (offline, against a fake model server on loopback).
  { extends: true, test: { name: "runtime-opencode", include: ["packages/runtime/test/opencode/**/*.test.ts"] } },
  { extends: true, test: { name: "architecture", include: ["test/architecture/**/*.test.ts"] } },
  // Dockerfile, Compose and Kubernetes manifests (dclint; `kubectl kustomize`, installed by .ci/run).
  { extends: true, test: { name: "deploy", include: ["test/deploy/**/*.test.ts"] } },
  // Drills with real processes (restore, failover) and the load harness: slow, so not in `npm test`; .ci/run runs
  // them as their own step with COWORK_DRILLS=1 (`COWORK_DRILLS=1 npx vitest run --project drills`).
  ...(process.env.COWORK_DRILLS === "1" ? [{ extends: true, test: { name: "drills", include: ["apps/cli/test/drills/**/*.test.ts"] } }] : []),
  // The workbench's pure modules (the timeline fold); the browser flows are in `browserProjects`.
  { extends: true, test: { name: "workbench", include: ["apps/workbench/test/unit/**/*.test.ts"] } }
]

/** Not part of `npm test`: `npm run test:browser` (vitest.browser.config.ts), a separate CI step. */
export const browserProjects = [
  { extends: true, test: { name: "browser", include: ["apps/workbench/test/browser/**/*.test.ts"] } }
]
