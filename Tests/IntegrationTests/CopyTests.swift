// Instrumented copies (Sources/Preload/rewriter/) on programs/copies.c: a loop profiled with
// `privbox profile --inline` runs, under `privbox run`, from a copy of its function whose syscall
// instructions and wrapper calls go to the identity executor; the program's output is the same as
// natively, and the report at exit (PRIVBOX_LOG=info) says which sites were served and how often.
import Foundation
import Profiler
import XCTest

final class CopyTests: XCTestCase {
    override func setUpWithError() throws {
        try Paths.requireBuilt()
    }

    struct Run { let native: Result; let accelerated: Result; let scratch: Scratch }

    /// The scenario natively, profiled (with --inline), then accelerated with the log at info level
    /// (and `extra` in the environment). stdout and exit status must match native's.
    /// PRIVBOX_COPY=always unless `extra` says otherwise: these loops are short, and by default a
    /// copy is made only where the profiled calls repay its start-up cost (the two tests on that
    /// rule pass their own setting).
    func accelerated(_ scenario: String, _ n: Int, extra: [String: String] = [:],
                     file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let prog = try Programs.path("copies")
        let args = [prog, scenario, String(n)]
        let native = try Runner.run(args, environment: Runner.cleanEnvironment)
        XCTAssertEqual(native.status, 0, native.stderr, file: file, line: line)
        let s = try Scratch()
        let profile = s.path("\(scenario).json")
        let prof = try Runner.run([Paths.cli, "profile", "--inline", "-o", profile, "--"] + args,
                                  environment: Runner.cleanEnvironment)
        XCTAssertEqual(prof.stdout, native.stdout, "\(scenario): profiled output differs", file: file, line: line)
        var env = Runner.cleanEnvironment
        env["PRIVBOX_LOG"] = "info"
        env["PRIVBOX_COPY"] = "always"
        for (k, v) in extra { env[k] = v }
        let acc = try Runner.run([Paths.cli, "run", "-p", profile, "--"] + args, environment: env)
        XCTAssertEqual(acc.stdout, native.stdout, "\(scenario): accelerated output differs\n\(acc.stderr)",
                       file: file, line: line)
        XCTAssertEqual(acc.status, native.status, "\(scenario): exit status differs\n\(acc.stderr)", file: file, line: line)
        XCTAssertFalse(acc.signalled, acc.stderr, file: file, line: line)
        return Run(native: native, accelerated: acc, scratch: s)
    }

    /// "N calls answered by identity" for the site labelled with `syscall` and `function`.
    func served(_ stderr: String, _ syscall: String, in function: String) -> Int? {
        for line in stderr.split(separator: "\n") where line.contains("(\(syscall), syscall instruction in \(function))") {
            guard let r = line.range(of: "instrumented; ") else { continue }
            return Int(line[r.upperBound...].split(separator: " ").first ?? "")
        }
        return nil
    }

    func testRawSyscallLoopRunsFromACopyServedByTheIdentityExecutor() throws {
        let run = try accelerated("inline", 3000)
        let err = run.accelerated.stderr
        XCTAssertTrue(run.native.stdout.hasSuffix("inline: same pid 3000 of 3000, registers kept 47 of 47\n"),
                      String(run.native.stdout.suffix(80)))
        XCTAssertTrue(err.contains("copied inline_loop ("), err)
        // One thread: every getpid of the loop was answered from the cache, none by the kernel
        // but the first (which fills it) — the counts are exact here.
        let loopServed = try XCTUnwrap(served(err, "getpid", in: "inline_loop"), err)
        XCTAssertGreaterThanOrEqual(loopServed, 2999, err)
        // The leaf function that checks registers, flags and its red zone around the call was
        // copied too, and the checks held (the output above says "registers kept 47 of 47").
        XCTAssertTrue(err.contains("copied checked_getpid ("), err)
        XCTAssertEqual(served(err, "getpid", in: "checked_getpid").map { $0 >= 46 }, true, err)
        // The write is not an identity call: it stays a syscall instruction in the copy.
        XCTAssertFalse(err.contains("(write, syscall instruction"), err)
    }

    func testByDefaultACopyIsMadeOnlyWhereTheProfiledCallsRepayIt() throws {
        // 3,000 raw getpid calls save ~0.4 ms, less than a copy costs at start-up: not copied,
        // and the loop's getpid runs as natively (the output is the same either way).
        let few = try accelerated("inline", 3000, extra: ["PRIVBOX_COPY": "1"])
        var err = few.accelerated.stderr
        XCTAssertTrue(err.contains("(getpid): not copied: 3000 profiled calls would not repay a copy's start-up"), err)
        XCTAssertFalse(err.contains("copied inline_loop ("), err)
        XCTAssertNil(served(err, "getpid", in: "inline_loop"), err)
        // 25,000 do (the threshold for a syscall instruction is 20,000): copied and served.
        let many = try accelerated("inline", 25000, extra: ["PRIVBOX_COPY": "1"])
        err = many.accelerated.stderr
        XCTAssertTrue(err.contains("copied inline_loop ("), err)
        XCTAssertGreaterThanOrEqual(served(err, "getpid", in: "inline_loop") ?? 0, 24999, err)
    }

    func testThePlanCacheKeepsEachSitesCalls() throws {
        // The copy decision needs each site's profiled calls on every run, also when the plan
        // comes from the cache (privbox-plan/3); a cache line whose count is not a number is
        // refused and the plan computed again.
        let prog = try Programs.path("copies")
        let s = try Scratch()
        let profile = s.path("p.json")
        _ = try Runner.run([Paths.cli, "profile", "--inline", "-o", profile, "--", prog, "inline", "3000"],
                           environment: Runner.cleanEnvironment)
        var env = Runner.cleanEnvironment
        env["PRIVBOX_LOG"] = "debug"
        env["XDG_CACHE_HOME"] = s.path("cache")
        func run() throws -> String {
            let r = try Runner.run([Paths.cli, "run", "-p", profile, "--", prog, "inline", "3000"], environment: env)
            XCTAssertEqual(r.status, 0, r.stderr)
            return r.stderr
        }
        let notCopied = "(getpid): not copied: 3000 profiled calls would not repay"
        let first = try run()
        XCTAssertFalse(first.contains("plan read from"), first)
        XCTAssertTrue(first.contains(notCopied), first)
        let second = try run()
        XCTAssertTrue(second.contains("plan read from"), second)
        XCTAssertTrue(second.contains(notCopied), second)
        let dir = s.path("cache/privbox/plans")
        let plans = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".plan") }
        XCTAssertEqual(plans.count, 1, "\(plans)")
        let file = dir + "/" + plans[0]
        var lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("privbox-plan/3 "), lines[0])
        let last = lines.count - 1
        lines[last] = lines[last].split(separator: " ").dropLast().joined(separator: " ") + " -1"
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let third = try run()
        XCTAssertFalse(third.contains("plan read from"), third)
        XCTAssertTrue(third.contains(notCopied), third)
    }

    func testTheDecodedFunctionIsCachedForTheNextRun() throws {
        let s = try Scratch()
        let first = try accelerated("inline", 300, extra: ["XDG_CACHE_HOME": s.path("cache"), "PRIVBOX_LOG": "debug"])
        XCTAssertFalse(first.accelerated.stderr.contains("read from"), first.accelerated.stderr)
        let cached = try FileManager.default.contentsOfDirectory(atPath: s.path("cache/privbox/copies"))
        XCTAssertEqual(cached.filter { $0.hasSuffix(".copy") }.count, 2, "\(cached)")
        let second = try accelerated("inline", 300, extra: ["XDG_CACHE_HOME": s.path("cache"), "PRIVBOX_LOG": "debug"])
        let err = second.accelerated.stderr
        XCTAssertTrue(err.contains("inline_loop: decoded before, read from"), err)
        XCTAssertTrue(err.contains("copied inline_loop ("), err)
        XCTAssertGreaterThanOrEqual(served(err, "getpid", in: "inline_loop") ?? 0, 299, err)
    }

    func testCopiesCanBeTurnedOff() throws {
        let run = try accelerated("inline", 500, extra: ["PRIVBOX_COPY": "0"])
        XCTAssertFalse(run.accelerated.stderr.contains("copied "), run.accelerated.stderr)
        XCTAssertFalse(run.accelerated.stderr.contains("instrumented"), run.accelerated.stderr)
    }

    func testTheGateSettingChangesNothingOnAStockKernel() throws {
        // PRIVBOX_GATE=on asks for boxes; a kernel without privbox's gate (kernel/) answers the
        // query with EINVAL, and the copies are the ordinary ones, serving identity values as
        // before. (The boxed copies are tested in the guest: scripts/kernel-test.)
        let run = try accelerated("inline", 500, extra: ["PRIVBOX_GATE": "on"])
        let err = run.accelerated.stderr
        XCTAssertTrue(err.contains("copied inline_loop ("), err)
        XCTAssertFalse(err.contains("runs in a box"), err)
        XCTAssertFalse(err.contains("kernel gate"), err)
        XCTAssertGreaterThanOrEqual(served(err, "getpid", in: "inline_loop") ?? 0, 499, err)
    }

    func testWrapperCallInACopyGoesToTheExecutorEntry() throws {
        let run = try accelerated("call", 3000)
        let err = run.accelerated.stderr
        XCTAssertTrue(err.contains("copied call_loop ("), err)
        XCTAssertEqual(run.native.stdout.split(separator: "\n").last, "same pid 3000 of 3000")
        // The call became the cached value's load, inlined; it answered.
        XCTAssertTrue(err.contains("(getpid, call in call_loop): instrumented; identity answered by the value's load inlined at the call"), err)
    }

    func testThreadsCallingGettidThroughACopyEachGetTheirOwn() throws {
        // gettid()'s inlined load reads the thread's own word (at its offset from the thread
        // pointer): a shared or misplaced word would give one thread the other's tid.
        let run = try accelerated("tidcall", 20000)
        XCTAssertEqual(run.native.stdout, "same tid 20000 and 20000 of 20000\n")
        let err = run.accelerated.stderr
        XCTAssertTrue(err.contains("copied tid_call_thread ("), err)
        XCTAssertTrue(err.contains("(gettid, call in tid_call_thread): instrumented; identity answered by the value's load inlined at the call"), err)
    }

    func testLibcsOwnSyscallsAreServedFromCopiesOfLibc() throws {
        // raise() makes getpid and gettid inside glibc (__pthread_kill_implementation calls
        // __getpid; neither goes through an exported wrapper).
        let run = try accelerated("raise", 2000)
        let err = run.accelerated.stderr
        XCTAssertTrue(err.contains("copied __getpid (libc.so.6+0x") || err.contains("copied getpid (libc.so.6+0x"), err)
        let pid = served(err, "getpid", in: "__getpid") ?? served(err, "getpid", in: "getpid")
        XCTAssertEqual(pid.map { $0 >= 1999 }, true, err)
    }

    func testThreadsShareTheCopy() throws {
        let run = try accelerated("tid", 20000)
        XCTAssertEqual(run.native.stdout, "same tid 20000 and 20000 of 20000\n")
        let err = run.accelerated.stderr
        XCTAssertTrue(err.contains("copied tid_thread ("), err)
        // The count is not atomic (the stub keeps the flags, which an atomic add would not), so
        // with two threads it is only a lower bound; it must show that the cache served.
        XCTAssertGreaterThan(served(err, "gettid", in: "tid_thread") ?? 0, 1000, err)
    }

    func testAFunctionWithAnIndirectJumpIsRefusedAndRunsAsBefore() throws {
        let run = try accelerated("refuse", 2000)
        let err = run.accelerated.stderr
        XCTAssertTrue(err.contains("not copied: refuse_loop (copies+0x"), err)
        XCTAssertTrue(err.contains("indirect jump at +0x"), err)
        XCTAssertNil(served(err, "getpid", in: "refuse_loop"), err)
        // main calls syscall(SYS_getpid), recorded as getpid: a call to syscall(), not to getpid(),
        // so it is not replaced.
        XCTAssertFalse(err.contains("(getpid, call in main): instrumented"), err)
    }

    func testUnwindingCrossesACopiedFrame() throws {
        // backtrace() from a function the copy calls: the same number of frames as natively
        // (without the copy's registered unwind entry it stops at the copy).
        let run = try accelerated("unwind", 2000)
        XCTAssertTrue(run.accelerated.stderr.contains("copied unwind_loop ("), run.accelerated.stderr)
        XCTAssertTrue(run.accelerated.stderr.contains("unwind entry registered"), run.accelerated.stderr)
        XCTAssertTrue(run.native.stdout.contains("frames"), run.native.stdout)
    }

    func testACppExceptionUnwindsThroughACopiedFrame() throws {
        guard let cxx = which("c++") else { throw XCTSkip("no C++ compiler") }
        let s = try Scratch()
        let prog = s.path("copies_throw")
        let build = try Runner.run([cxx, "-O1", "-g", "-o", prog,
                                    Paths.programs.appendingPathComponent("copies_throw.cc").path],
                                   environment: Runner.cleanEnvironment)
        XCTAssertEqual(build.status, 0, build.stderr)
        let native = try Runner.run([prog, "4000"], environment: Runner.cleanEnvironment)
        XCTAssertEqual(native.stdout, "caught halfway\n")
        let profile = s.path("throw.json")
        _ = try Runner.run([Paths.cli, "profile", "--inline", "-o", profile, "--", prog, "4000"],
                           environment: Runner.cleanEnvironment)
        var env = Runner.cleanEnvironment
        env["PRIVBOX_LOG"] = "info"
        env["PRIVBOX_COPY"] = "always"
        let acc = try Runner.run([Paths.cli, "run", "-p", profile, "--", prog, "4000"], environment: env)
        XCTAssertEqual(acc.stdout, native.stdout, acc.stderr)
        XCTAssertEqual(acc.status, 0, acc.stderr)
        XCTAssertTrue(acc.stderr.contains("copied getpid_loop"), acc.stderr)
        XCTAssertTrue(acc.stderr.contains("unwind entry registered"), acc.stderr)
        XCTAssertGreaterThanOrEqual(served(acc.stderr, "getpid", in: "getpid_loop(long,_long)") ?? 0, 2000, acc.stderr)
    }

    func testASeccompFilterInstalledLaterIsObeyed() throws {
        // Both loops are served from copies, then the program makes getpid fail with a seccomp
        // filter: every later getpid, raw or through libc, must fail as the kernel says.
        let run = try accelerated("seccomp", 2000)
        let out = run.native.stdout
        XCTAssertTrue(out.contains("before: raw 2000 of 2000, calls 2000 of 2000"), out)
        XCTAssertTrue(out.contains("after: raw 2000 of 2000, calls 2000 of 2000"), out)
        let err = run.accelerated.stderr
        XCTAssertTrue(err.contains("copied inline_loop (") && err.contains("copied call_loop ("), err)
        XCTAssertTrue(err.contains("executors stopped: the program installs a seccomp filter"), err)
    }

    func testForkAndVforkChildrenRunTheCopyWithTheirOwnPid() throws {
        let run = try accelerated("fork", 2000)
        let out = run.native.stdout
        XCTAssertTrue(out.contains("fork child: same pid 2000 of 2000"), out)
        XCTAssertTrue(out.contains("vfork child: same pid 2000 of 2000, calls 2000 of 2000"), out)
        XCTAssertTrue(out.contains("parent: same pid 2000 of 2000"), out)
        // getpid() through libc, from the copy's inlined load: the fork child's wiped cache and the
        // vfork child's invalidated one must not give the parent's pid.
        XCTAssertTrue(out.contains("fork child: calls same pid 2000 of 2000"), out)
        XCTAssertTrue(out.contains("parent: calls same pid 2000 of 2000"), out)
        let err = run.accelerated.stderr
        XCTAssertTrue(err.contains("copied inline_loop ("), err)
        XCTAssertTrue(err.contains("copied call_loop ("), err)
        XCTAssertTrue(err.contains("(getpid, call in call_loop): instrumented; identity answered by the value's load inlined at the call"), err)
    }
}
