// Deciding whether a profile applies to the program that is starting. A profile is keyed by the
// executable's path and GNU build-id: the same path with another build-id means the binary was
// rebuilt or upgraded since profiling, so its offsets mean nothing and the profile is refused.

public enum ProfileMatch: Equatable {
    case matches
    /// The profile is valid but holds no process of this executable (e.g. a child not profiled).
    case nothingForProgram
    /// The profile holds this executable, recorded from another build (its build-id is given).
    case otherBuild(recorded: String)

    public static func check(_ profile: Profile, exe: String, buildID: String) -> ProfileMatch {
        let mine = profile.processes.filter { $0.exe == exe }
        if mine.isEmpty { return .nothingForProgram }
        if mine.contains(where: { $0.exeBuildID == buildID }) { return .matches }
        return .otherBuild(recorded: mine[0].exeBuildID)
    }
}
