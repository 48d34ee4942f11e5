import { Effect, Scope } from "effect"

/**
 * A scope for a worker a test starts, closed by the test's own scope however the test ends: a failing assertion
 * included (a worker left running kept its fibers and pool connections, and later tests hung). The test may close it
 * itself to check the shutdown; closing it again is a no-op.
 */
export const workerScope = Effect.acquireRelease(Scope.make(), (scope, exit) => Scope.close(scope, exit))
