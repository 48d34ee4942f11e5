/**
 * Which binding an inbound message reaches: the binding-only rule of a binding's own inbound secret. The real cloud
 * client (`CloudClient`) and the gateway tests' memory cloud both apply it.
 */

/** What the rule reads of a binding. */
export interface InboundBindingView {
  readonly id: string
  readonly providerId: string
  readonly externalTarget: string
  readonly inboundCredentialRef: string | null
}

/**
 * The binding to look up: signed with a binding's own secret (`viaBinding`, `/webhooks/:providerId/:bindingId`), that
 * binding of this provider; signed with the provider's, the provider's binding whose target (or id) the message names.
 */
export const inboundCandidate = (providerId: string, target: string, viaBinding: string | undefined) =>
(binding: Pick<InboundBindingView, "id" | "providerId" | "externalTarget">): boolean =>
  binding.providerId === providerId &&
  (viaBinding === undefined ? binding.externalTarget === target || binding.id === target : binding.id === viaBinding)

/**
 * The candidate, when it admits the message. Via its own secret: only when the message names its target or id (its
 * secret reaches no other binding). Via the provider's secret: only a binding without its own inbound secret (setting
 * one takes the binding off the provider-wide path).
 */
export const admittedBinding = <B extends InboundBindingView>(candidate: B | undefined, target: string, viaBinding: string | undefined): B | undefined =>
  candidate === undefined
    ? undefined
    : viaBinding === undefined
    ? (candidate.inboundCredentialRef === null ? candidate : undefined)
    : (candidate.externalTarget === target || candidate.id === target ? candidate : undefined)
