/** CPU time of processes from /proc (Linux), for the benches' CPU-per-unit figures. */
import * as Fs from "node:fs"

const CLK_TCK = 100

/** utime + stime (+ cutime + cstime when `children`) of one process, in ms. */
export const cpuOf = (pid: number, children: boolean): number => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // fields[0] is field 3 (state): utime = field 14, stime 15, cutime 16, cstime 17.
    const ticks = Number(fields[11]) + Number(fields[12]) + (children ? Number(fields[13]) + Number(fields[14]) : 0)
    return (ticks * 1000) / CLK_TCK
  } catch {
    return 0
  }
}

const ppidOf = (pid: number): number => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
  } catch {
    return -1
  }
}

/** The postmaster and its live children; exited backends are in the postmaster's cutime/cstime. */
export const postgresCpu = (postmaster: number): number => {
  let total = cpuOf(postmaster, true)
  for (const entry of Fs.readdirSync("/proc")) {
    const pid = Number(entry)
    if (Number.isInteger(pid) && pid !== postmaster && ppidOf(pid) === postmaster) total += cpuOf(pid, false)
  }
  return total
}
