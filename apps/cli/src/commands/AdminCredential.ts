import { WorkerRegistry } from "@cowork/services"
import { Console, Effect, Option, Redacted } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { cliActor, printJson, userErrors } from "./AdminRegistry.ts"

const workerId = Argument.String("worker-id").pipe(Argument.withDescription("Worker id"))
const credentialId = Argument.String("credential-id").pipe(Argument.withDescription("Credential id"))
const expiresIn = Flag.Int("expires-in-seconds").pipe(Flag.withDescription("Lifetime (default 30 days, at most 365)"), Flag.optional)

/** Metadata as one JSON line, then the plaintext alone on the last line: the only time it is ever shown. */
const printIssued = (issued: { readonly credential: unknown; readonly plaintext: Redacted.Redacted<string> }) =>
  printJson({ credential: issued.credential }).pipe(Effect.andThen(Console.log(Redacted.value(issued.plaintext))))

const issue = Command.make("issue", { workerId, expiresIn }, (input) =>
  Effect.gen(function*() {
    const issued = yield* (yield* WorkerRegistry).issueCredential(input.workerId, {
      expiresInSeconds: Option.getOrUndefined(input.expiresIn)
    }, cliActor).pipe(userErrors)
    yield* printIssued(issued)
  })).pipe(Command.withDescription("Issue an ocw_ credential; the plaintext is printed once, only its hash is stored"))

const rotate = Command.make("rotate", {
  workerId,
  credentialId,
  expiresIn,
  grace: Flag.Int("grace-seconds").pipe(Flag.withDescription("Let the old credential expire after this long"), Flag.optional)
}, (input) =>
  Effect.gen(function*() {
    const issued = yield* (yield* WorkerRegistry).rotateCredential(input.workerId, input.credentialId, {
      expiresInSeconds: Option.getOrUndefined(input.expiresIn),
      graceSeconds: Option.getOrUndefined(input.grace)
    }, cliActor).pipe(userErrors)
    yield* printIssued(issued)
  })).pipe(Command.withDescription("Issue a replacement linked to the old credential (which stays valid until revoked)"))

const revoke = Command.make("revoke", { workerId, credentialId }, (input) =>
  Effect.gen(function*() {
    const credential = yield* (yield* WorkerRegistry).revokeCredential(input.workerId, input.credentialId, cliActor).pipe(userErrors)
    yield* printJson({ credential })
  })).pipe(Command.withDescription("Revoke a credential at once"))

const list = Command.make("list", { workerId }, (input) =>
  Effect.gen(function*() {
    yield* printJson({ credentials: yield* (yield* WorkerRegistry).listCredentials(input.workerId, cliActor).pipe(userErrors) })
  })).pipe(Command.withDescription("A worker's credentials, metadata only"))

export const command = Command.make("credential").pipe(
  Command.withDescription("Worker credentials (ocw_…)"),
  Command.withSubcommands([issue, rotate, revoke, list])
)
