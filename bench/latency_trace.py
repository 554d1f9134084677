#!/usr/bin/env python3
"""latency_trace.py - one update's path through the relay and parleyd,
stage by stage, from `perf script` of a traced bench_latency run (see
latency_trace.sh, which makes the input).

Threads are told apart by name and process: the driver is the
bench_latency process with the most threads (publisher, subscriber and
their libzmq I/O threads), the relay the other bench_latency process,
parleyd the processes whose name starts with parleyd that started after
the driver. For each
request the daemon's I/O thread reads (a recvfrom of more than 100 bytes,
at most one per 1.5 ms: the bench sends one a millisecond), the stages
are the first matching events after it:

  driver send     the driver's last write(2) to its I/O thread's eventfd
  I/O recv        the daemon's I/O thread reads the request
  loop wakes      the daemon's loop thread returns from poll
  pwrite          parleyd's commit writes the log (parleyd only)
  first signal    the loop's first write(2) to the I/O thread's eventfd
                  after it woke: the relay's delivery, parleyd's ack
  ack, delivery   the I/O thread's sendto of the ack (<= 100 bytes) and
                  of the delivery (> 100 bytes)
  sub recv        the driver's subscriber I/O thread reads the delivery
  sub thread      the subscriber thread returns from poll

and, per update, whether the loop thread was preempted (switched out
runnable) right after its first signal, and how many times it signalled
the I/O thread before the delivery's sendto.
"""
import bisect
import collections
import re
import sys

LINE = re.compile(r'^\s*(\S.*?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+'
                  r'\S+:(\S+):\s*(.*)$')


def load(path):
    """Events as (us, comm, pid, tid, name, args), in time order."""
    ev = []
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                comm, pid, tid, _cpu, t, name, args = m.groups()
                ev.append((float(t) * 1e6, comm, int(pid), int(tid), name,
                           args))
    ev.sort()
    return ev


def ret(args):
    """A sys_exit's return value, or -1 for an error."""
    try:
        v = int(args.strip(), 16)
    except ValueError:
        return -1
    return v if v < 1 << 62 else -1


def field(args, key):
    m = re.search(key + r': (0x[0-9a-f]+)', args)
    return int(m.group(1), 16) if m else -1


def analyse(ev, times, comm_of, driver, spid):
    """Stage durations (us) of the daemon process spid, by stage."""
    io = {t for t, c in comm_of.items() if c.startswith('ZMQbg/IO')}
    rows = collections.defaultdict(list)
    last = -1e18
    for i, e in enumerate(ev):
        if not (e[2] == spid and e[3] in io and e[4] == 'sys_exit_recvfrom'
                and ret(e[5]) > 100 and e[0] - last >= 1500):
            continue
        t = last = e[0]
        j = i
        while j >= 0 and not (ev[j][3] == driver
                              and ev[j][4] == 'sys_enter_write'):
            j -= 1
        if j < 0 or t - ev[j][0] > 2000:
            continue
        t0 = ev[j][0]
        win = ev[i:bisect.bisect_left(times, t + 3000)]

        def first(pred, after):
            return next((x for x in win if x[0] >= after and pred(x)), None)

        wake = first(lambda x: x[3] == spid
                     and x[4] in ('sys_exit_poll', 'sys_exit_ppoll'), t)
        if wake is None:
            continue
        sig = first(lambda x: x[3] == spid and x[4] == 'sys_enter_write',
                    wake[0])
        dsend = first(lambda x: x[2] == spid and x[3] in io
                      and x[4] == 'sys_enter_sendto'
                      and field(x[5], 'len') > 100, wake[0])
        if sig is None or dsend is None:
            continue
        ack = first(lambda x: x[2] == spid and x[3] in io
                    and x[4] == 'sys_enter_sendto'
                    and 0 < field(x[5], 'len') <= 100, sig[0])
        pw = first(lambda x: x[3] == spid and x[4] == 'sys_enter_pwrite64',
                   wake[0])
        subrecv = first(lambda x: x[2] == driver and x[3] in io
                        and x[4] == 'sys_exit_recvfrom'
                        and ret(x[5]) > 100, dsend[0])
        if subrecv is None:
            continue
        subwake = first(lambda x: x[2] == driver and x[3] != driver
                        and x[3] not in io
                        and x[4] in ('sys_exit_poll', 'sys_exit_ppoll'),
                        subrecv[0])
        sw = first(lambda x: x[4] == 'sched_switch'
                   and 'prev_pid=%d ' % spid in x[5], sig[0])
        signals = sum(1 for x in win if sig[0] <= x[0] <= dsend[0]
                      and x[3] == spid and x[4] == 'sys_enter_write')
        r = rows
        r['driver send -> I/O recv'].append(t - t0)
        r['I/O recv -> loop wakes'].append(wake[0] - t)
        if pw is not None and pw[0] < sig[0]:
            r['loop wakes -> pwrite'].append(pw[0] - wake[0])
            r['pwrite -> first signal'].append(sig[0] - pw[0])
        r['loop wakes -> first signal'].append(sig[0] - wake[0])
        if ack is not None and ack[0] < dsend[0]:
            r['first signal -> ack sendto'].append(ack[0] - sig[0])
        r['first signal -> delivery sendto'].append(dsend[0] - sig[0])
        r['delivery sendto -> sub recv'].append(subrecv[0] - dsend[0])
        if subwake is not None:
            r['sub recv -> sub thread'].append(subwake[0] - subrecv[0])
            r['TOTAL driver send -> sub thread'].append(subwake[0] - t0)
        r['loop preempted after 1st signal (%)'].append(
            100.0 if sw is not None and sw[0] - sig[0] < 20
            and 'prev_state=R' in sw[5] else 0.0)
        r['signals to I/O before delivery'].append(signals)
    return rows


def main():
    ev = load(sys.argv[1])
    times = [e[0] for e in ev]
    comm_of, threads = {}, collections.defaultdict(set)
    for e in ev:
        comm_of[e[3]] = e[1]
        threads[e[2]].add(e[3])
    bench = [p for p in threads if comm_of.get(p) == 'bench_latency']
    if not bench:
        sys.exit('latency_trace: no bench_latency in the trace')
    driver = max(bench, key=lambda p: len(threads[p]))
    daemons = [('relay', p) for p in bench if p != driver]
    daemons += [('parleyd', p) for p in sorted(threads)
                if comm_of.get(p, '').startswith('parleyd') and p > driver]
    res = [(name, pid, analyse(ev, times, comm_of, driver, pid))
           for name, pid in daemons]
    keys = []
    for _, _, rows in res:
        keys += [k for k in rows if k not in keys]
    print('| stage, p50 (p90) us | '
          + ' | '.join('%s %d (%d updates)'
                       % (n, p, len(r['driver send -> I/O recv']))
                       for n, p, r in res) + ' |')
    print('|---|' + '---|' * len(res))
    for k in keys:
        cells = []
        for _, _, rows in res:
            v = sorted(rows.get(k, []))
            if not v:
                cells.append('-')
            elif k.endswith('(%)'):
                cells.append('%.0f %%' % (sum(v) / len(v)))
            else:
                cells.append('%.1f (%.1f)' % (v[len(v) // 2],
                                             v[int(len(v) * 0.9)]))
        print('| %s | %s |' % (k, ' | '.join(cells)))


if __name__ == '__main__':
    main()
