// libFuzzer target for the profile parser (JSONParser + Profile decoding). Built and run by
// scripts/fuzz. The property: any input either decodes or throws ProfileError/JSONError, never
// crashes, never traps on an overflow, and whatever decodes re-encodes to a profile that decodes
// to the same value.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProfileParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let json = try? JSONParser.parse(bytes) else { return 0 }
    guard let profile = try? Profile(json: json) else { return 0 }
    let text = JSONWriter.write(profile.toJSON())
    guard let again = try? Profile(json: JSONParser.parse(text)), again == profile else {
        fatalError("profile did not survive a write/read round trip")
    }
    return 0
}
