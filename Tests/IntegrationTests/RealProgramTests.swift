// Real programs nobody here wrote, run natively and under every mode: output, files and exit
// status must be identical.
import Foundation
import XCTest

final class RealProgramTests: XCTestCase {
    override func setUpWithError() throws { try Paths.requireBuilt() }

    /// Runs `args` in a fresh working directory per mode and compares the transcript and the
    /// files the command leaves behind with the native run.
    func assertSameInEveryMode(_ args: [String], stdin: String? = nil, file: StaticString = #filePath,
                               line: UInt = #line) throws {
        let s = try Scratch()
        var baseline: (Result, [String: Data])? = nil
        for mode in [Mode.native, .off, .profile, .auto] {
            let work = s.path("work-\(mode.rawValue)")
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            let r = try Runner.run(args, mode: mode, scratch: s, profile: s.path("\(mode.rawValue).%p.json"),
                                   cwd: work, stdin: stdin)
            var produced: [String: Data] = [:]
            if let e = FileManager.default.enumerator(atPath: work) {
                for case let f as String in e {
                    var isDir: ObjCBool = false
                    let full = work + "/" + f
                    if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue {
                        produced[f] = FileManager.default.contents(atPath: full)
                    }
                }
            }
            if let (base, baseFiles) = baseline {
                XCTAssertEqual(r, base, "\(args.joined(separator: " ")) in mode \(mode)", file: file, line: line)
                XCTAssertEqual(produced, baseFiles, "files left by \(args[0]) in mode \(mode)", file: file, line: line)
            } else {
                baseline = (r, produced)
            }
        }
    }

    func testPython() throws {
        let script = """
        import os, sys, json, subprocess, threading, tempfile, hashlib
        data = {"n": list(range(50))}
        with open("out.json", "w") as f: json.dump(data, f)
        with open("out.json") as f: assert json.load(f) == data
        h = hashlib.sha256()
        for i in range(2000):
            h.update(os.urandom(0) + str(i).encode())
        print(h.hexdigest())
        results = []
        def work(i):
            with tempfile.TemporaryFile() as t:
                t.write(b"x" * i); t.seek(0); results.append(len(t.read()))
        ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        [t.start() for t in ts]; [t.join() for t in ts]
        print(sorted(results))
        print(subprocess.run(["sh", "-c", "echo child; exit 3"], capture_output=True, text=True))
        r, w = os.pipe()
        if os.fork() == 0:
            os.write(w, b"from fork"); os._exit(0)
        os.wait(); print(os.read(r, 100))
        sys.exit(5)
        """
        try assertSameInEveryMode(["/usr/bin/python3", "-c", script])
    }

    func testBashScriptCorpus() throws {
        let script = #"""
        set -u
        trap 'echo "trap: exiting with $?"' EXIT
        trap 'echo "got USR1"' USR1
        kill -USR1 $$
        printf '%s\n' alpha beta gamma delta > list.txt
        while IFS= read -r line; do echo "line: $line"; done < list.txt
        count=0; while read -r _; do count=$((count+1)); done < <(seq 1 500); echo "count=$count"
        here=$(pwd); ( cd /; echo "subshell in $(pwd)" ); [ "$(pwd)" = "$here" ] && echo "back where we were"
        sort -r list.txt | tr a-z A-Z | head -n 2
        { echo one; echo two >&2; } 2>&1 | cat -n
        for i in $(seq 1 20); do echo $i; done | paste -sd+ | bc 2>/dev/null || echo 210
        x=$(for i in 1 2 3; do (echo "sub $i"); done); echo "$x"
        exec 3> fd3.txt; echo "via fd 3" >&3; exec 3>&-; cat fd3.txt
        false || echo "or-branch"
        (exit 4); echo "subshell exit $?"
        echo "$((6 * 7))" | { read -r v; echo "read $v"; }
        exit 9
        """#
        try assertSameInEveryMode(["/bin/bash", "-c", script])
    }

    func testSqlite3() throws {
        guard let sqlite = which("sqlite3") else { throw XCTSkip("sqlite3 is not installed") }
        var sql = "PRAGMA journal_mode=WAL;\nCREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n"
        for batch in 0..<20 {
            sql += "BEGIN;\n"
            for i in 0..<50 { sql += "INSERT INTO t(v) VALUES('row-\(batch)-\(i)');\n" }
            sql += "COMMIT;\n"
        }
        sql += "SELECT count(*), min(v), max(v) FROM t;\nSELECT v FROM t WHERE id % 97 = 0;\nPRAGMA integrity_check;\n"
        try assertSameInEveryMode([sqlite, "db.sqlite"], stdin: sql)
    }

    func testTar() throws {
        let script = """
        mkdir -p tree/a/b && for i in $(seq 1 40); do head -c $((i * 137)) /dev/zero | tr '\\0' x > tree/a/b/f$i; done
        echo hello > tree/top.txt
        tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf archive.tar tree
        mkdir out && tar -xf archive.tar -C out && diff -r tree out/tree && echo identical
        tar -tvf archive.tar | wc -l
        """
        try assertSameInEveryMode(["/bin/sh", "-c", script])
    }
}
