import type { WorkflowSchedule, WorkflowTrigger, WorkflowTriggerInput } from "@cowork/domain"
import { Cron } from "croner"

/**
 * Due slots of workflow schedules, computed with `croner` (pinned): cron in an IANA time zone, DST-correct.
 *
 * DST, as croner (after Vixie cron) does it and as the runbook documents: a fixed local time fires at that local
 * time on both sides of a change (09:00 Europe/London is 09:00 GMT in winter and 09:00 BST in summer). A local time
 * that does not exist (spring forward, e.g. 01:30 on the last Sunday of March in London) fires ONCE, at the first
 * valid time after the gap (02:00 BST); a local time that occurs twice (fall back) fires once, at its first
 * occurrence. Interval patterns (`* * * * * *`, `*\/5 * * * *`) follow real elapsed time.
 *
 * The calendar shapes become cron: daily `M H * * *`, weekly `M H * * D`, monthly `M H D * *` (a `dayOfMonth` of
 * 29-31 fires on the month's last day in shorter months), one_time once at `runAtHour:runAtMinute` local time on
 * the date of `startAt`. `startAt` (ISO date or date-time) is the earliest instant a slot may have.
 */

export interface ScheduleIssue {
  readonly field: string
  readonly message: string
}

const isValidTimeZone = (zone: string): boolean => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone })
    return true
  } catch {
    return false
  }
}

const DATE_PREFIX = /^(\d{4})-(\d{2})-(\d{2})/

const parseStartAt = (startAt: string | undefined): number | undefined | "invalid" => {
  if (startAt === undefined) return undefined
  const millis = Date.parse(startAt)
  return Number.isNaN(millis) || !DATE_PREFIX.test(startAt) ? "invalid" : millis
}

/** The local calendar fields of an instant in a zone. */
const localParts = (millis: number, zone: string) => {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    year: "numeric",
    month: "numeric",
    day: "numeric"
  }).formatToParts(new Date(millis))
  const get = (type: string) => Number(parts.find((part) => part.type === type)?.value)
  return { year: get("year"), month: get("month"), day: get("day") }
}

const daysInMonth = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate()

interface CompiledSchedule {
  /** The first slot strictly after `after` (epoch ms), or undefined when the schedule has no more slots. */
  readonly next: (after: number) => number | undefined
}

const cronOf = (pattern: string, zone: string) => new Cron(pattern, { timezone: zone, mode: "5-or-6-parts" })

/** Throws on a schedule `validateSchedule` would refuse; callers validate first. */
const compileSchedule = (schedule: WorkflowSchedule): CompiledSchedule => {
  const zone = schedule.timezone
  const startAt = parseStartAt(schedule.startAt)
  const floor = typeof startAt === "number" ? startAt - 1 : Number.NEGATIVE_INFINITY
  const hour = schedule.runAtHour ?? 0
  const minute = schedule.runAtMinute ?? 0
  const fromCron = (cron: Cron, accept: (slot: number) => boolean = () => true): CompiledSchedule => ({
    next: (after) => {
      let cursor = Math.max(after, floor)
      for (let guard = 0; guard < 64; guard++) {
        const slot = cron.nextRun(new Date(cursor))
        if (slot === null) return undefined
        if (accept(slot.getTime())) return slot.getTime()
        cursor = slot.getTime()
      }
      return undefined
    }
  })
  switch (schedule.type) {
    case "cron":
      return fromCron(cronOf(schedule.expression ?? "", zone))
    case "daily":
      return fromCron(cronOf(`${minute} ${hour} * * *`, zone))
    case "weekly":
      return fromCron(cronOf(`${minute} ${hour} * * ${schedule.dayOfWeek ?? 0}`, zone))
    case "monthly": {
      const day = schedule.dayOfMonth ?? 1
      if (day <= 28) return fromCron(cronOf(`${minute} ${hour} ${day} * *`, zone))
      return fromCron(cronOf(`${minute} ${hour} 28-31 * *`, zone), (slot) => {
        const local = localParts(slot, zone)
        return local.day === Math.min(day, daysInMonth(local.year, local.month))
      })
    }
    case "one_time": {
      const date = DATE_PREFIX.exec(schedule.startAt ?? "")
      if (date === null) return { next: () => undefined }
      const [, year, month, day] = date
      const cron = cronOf(`${minute} ${hour} ${Number(day)} ${Number(month)} *`, zone)
      const yearStart = Date.UTC(Number(year), 0, 1) - 14 * 3_600_000
      const once = cron.nextRun(new Date(yearStart))
      const slot = once !== null && localParts(once.getTime(), zone).year === Number(year) ? once.getTime() : undefined
      return { next: (after) => (slot !== undefined && slot > after ? slot : undefined) }
    }
  }
}

const REQUIRED_BY_TYPE: Record<WorkflowSchedule["type"], ReadonlyArray<keyof WorkflowSchedule>> = {
  cron: ["expression"],
  one_time: ["runAtHour", "runAtMinute", "startAt"],
  daily: ["runAtHour", "runAtMinute"],
  weekly: ["runAtHour", "runAtMinute", "dayOfWeek"],
  monthly: ["runAtHour", "runAtMinute", "dayOfMonth"]
}

/** The first problem with a schedule, naming its field under `prefix` (e.g. `triggers.0.schedule`). */
const validateSchedule = (schedule: WorkflowSchedule, prefix: string): ScheduleIssue | undefined => {
  if (!isValidTimeZone(schedule.timezone)) {
    return { field: `${prefix}.timezone`, message: `unknown IANA time zone \`${schedule.timezone}\`` }
  }
  for (const field of REQUIRED_BY_TYPE[schedule.type]) {
    if (schedule[field] === undefined) {
      return { field: `${prefix}.${field}`, message: `\`${field}\` is required for a \`${schedule.type}\` schedule` }
    }
  }
  if (parseStartAt(schedule.startAt) === "invalid") {
    return { field: `${prefix}.startAt`, message: "`startAt` must be an ISO 8601 date or date-time" }
  }
  if (schedule.type === "cron") {
    const expression = schedule.expression ?? ""
    const fields = expression.trim().split(/\s+/).length
    if (fields !== 5 && fields !== 6) {
      return { field: `${prefix}.expression`, message: "a cron expression has 5 fields (minute first) or 6 (second first)" }
    }
    try {
      cronOf(expression, schedule.timezone).nextRun()
    } catch (error) {
      const reason = error instanceof Error ? error.message.replace(/^CronPattern: /, "") : "invalid"
      return { field: `${prefix}.expression`, message: `invalid cron expression: ${reason}`.slice(0, 300) }
    }
  }
  return undefined
}

/** The first problem with a create body's triggers (empty list, missing schedule, duplicate ids, bad schedule). */
export const validateTriggers = (triggers: ReadonlyArray<WorkflowTriggerInput>): ScheduleIssue | undefined => {
  if (triggers.length === 0) return { field: "triggers", message: "a workflow needs at least one trigger" }
  const ids = new Set<string>()
  for (const [index, trigger] of triggers.entries()) {
    const prefix = `triggers.${index}`
    if (trigger.id !== undefined) {
      if (ids.has(trigger.id)) return { field: `${prefix}.id`, message: `duplicate trigger id \`${trigger.id}\`` }
      ids.add(trigger.id)
    }
    if (trigger.type === "schedule") {
      if (trigger.schedule === undefined) {
        return { field: `${prefix}.schedule`, message: "a schedule trigger needs a `schedule`" }
      }
      const issue = validateSchedule(trigger.schedule, `${prefix}.schedule`)
      if (issue !== undefined) return issue
    } else if (trigger.schedule !== undefined) {
      return { field: `${prefix}.schedule`, message: `a \`${trigger.type}\` trigger takes no schedule` }
    }
  }
  return undefined
}

const schedulesOf = (triggers: ReadonlyArray<WorkflowTrigger>) =>
  triggers.flatMap((trigger) =>
    trigger.type === "schedule" && trigger.enabled && trigger.schedule !== undefined ? [compileSchedule(trigger.schedule)] : []
  )

/** The earliest slot of any enabled schedule trigger strictly after `after`, or undefined when none is left. */
export const nextSlot = (triggers: ReadonlyArray<WorkflowTrigger>, after: number): number | undefined => {
  let best: number | undefined
  for (const schedule of schedulesOf(triggers)) {
    const slot = schedule.next(after)
    if (slot !== undefined && (best === undefined || slot < best)) best = slot
  }
  return best
}

/**
 * The distinct slots of every enabled schedule trigger in `(after, until]`, oldest first, at most `cap` of them;
 * `truncated` when more exist (the caller moves its cursor to the last one returned and continues next tick).
 */
const slotsBetween = (
  triggers: ReadonlyArray<WorkflowTrigger>,
  after: number,
  until: number,
  cap: number
): { readonly slots: ReadonlyArray<number>; readonly truncated: boolean } => {
  const slots: Array<number> = []
  let cursor = after
  while (slots.length < cap) {
    const slot = nextSlot(triggers, cursor)
    if (slot === undefined || slot > until) return { slots, truncated: false }
    slots.push(slot)
    cursor = slot
  }
  const more = nextSlot(triggers, cursor)
  return { slots, truncated: more !== undefined && more <= until }
}

interface SkippedSlots {
  /** How many slots were skipped (at least this many when `countCapped`). */
  readonly count: number
  readonly countCapped: boolean
  readonly first: number
  readonly last: number
}

export interface SlotPlan {
  /** Slots to fire now, oldest first. */
  readonly fire: ReadonlyArray<number>
  /** Slots not fired (missed outside the catch-up window, or superseded in `latest` mode): recorded as ONE skipped run. */
  readonly skipped: SkippedSlots | null
  /** Every slot up to here is decided; the next tick starts after it. */
  readonly cursor: number
  /** The next slot after `cursor`, or null when the schedule is over. */
  readonly nextRunAt: number | null
}

/** Most slots one workflow fires per tick: a long catch-up is worked off over several ticks. */
const MAX_SLOTS_PER_TICK = 200
/** Most missed slots counted one by one; beyond it the count is a lower bound and the cursor jumps ahead. */
const MAX_SKIPPED_COUNTED = 1_000
/** A slot this recent is never "missed": it covers tick latency and a scheduler restart. */
const MIN_CATCH_UP_WINDOW_MS = 60_000

/**
 * Decides the slots in `(cursor, now]`: those within the catch-up window fire (each, or only the latest), older
 * ones are skipped (counted, recorded once) — never a burst of every missed slot. Pure: the same inputs give the
 * same plan on every replica.
 */
export const planSlots = (input: {
  readonly triggers: ReadonlyArray<WorkflowTrigger>
  readonly cursor: number
  readonly now: number
  readonly catchUpWindowMs: number
  readonly catchUpMode: "each" | "latest"
}): SlotPlan => {
  const horizon = input.now - Math.max(input.catchUpWindowMs, MIN_CATCH_UP_WINDOW_MS)
  let cursor = input.cursor
  let skipped: { count: number; countCapped: boolean; first: number; last: number } | null = null
  const noteSkipped = (slots: ReadonlyArray<number>, capped: boolean) => {
    if (slots.length === 0) return
    skipped = skipped === null
      ? { count: slots.length, countCapped: capped, first: slots[0]!, last: slots[slots.length - 1]! }
      : { count: skipped.count + slots.length, countCapped: skipped.countCapped || capped, first: skipped.first, last: slots[slots.length - 1]! }
  }
  if (cursor < horizon - 1) {
    const missed = slotsBetween(input.triggers, cursor, horizon - 1, MAX_SKIPPED_COUNTED)
    noteSkipped(missed.slots, missed.truncated)
    cursor = horizon - 1
  }
  const due = slotsBetween(input.triggers, cursor, input.now, MAX_SLOTS_PER_TICK)
  let fire: ReadonlyArray<number> = due.slots
  if (input.catchUpMode === "latest") {
    // The latest slot is known only once the window is enumerated to its end; until then every slot is superseded.
    fire = due.truncated ? [] : due.slots.slice(-1)
    noteSkipped(due.truncated ? due.slots : due.slots.slice(0, -1), false)
  }
  const last = due.slots[due.slots.length - 1]
  const decided = last ?? cursor
  const next = nextSlot(input.triggers, decided)
  return { fire, skipped, cursor: decided, nextRunAt: next ?? null }
}
