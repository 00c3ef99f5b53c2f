import Testing

@testable import ConveyorJobsGenerator

@Suite("Job type names")
struct JobNamingTests {
    @Test(
        "stored name is the lowerCamelCase of the type name",
        arguments: [
            ("SendEmail", "sendEmail"),
            ("Echo", "echo"),
            ("Noop", "noop"),
            ("URLFetch", "urlFetch"),
            ("HTTP2Ping", "http2Ping"),
            ("URL", "url"),
            ("A", "a"),
            ("AB", "ab"),
            ("ABTest", "abTest"),
            ("S3Upload", "s3Upload"),
            ("V2", "v2"),
            ("IOS17Migration", "ios17Migration"),
            ("HTMLToPDF", "htmlToPDF"),
            ("IDsSync", "iDsSync"),  // plurals of acronyms are not special-cased
        ])
    func storedName(typeName: String, expected: String) {
        #expect(JobsGenerator.storedName(forTypeName: typeName) == expected)
    }

    @Test("valid type names", arguments: ["SendEmail", "Echo", "URLFetch", "HTTP2Ping", "A", "S3"])
    func validName(name: String) {
        #expect(JobsGenerator.problem(withTypeName: name) == nil)
    }

    @Test(
        "invalid type names",
        arguments: [
            "sendEmail", "send_email", "Send_Email", "Send-Email", "2Fast", "_Hidden", "", "Émail",
            "Send Email", "Send+Helpers", "Self", "Any", "Type", "Protocol", "Job", "JobRegistry", "WorkerJobType",
        ])
    func invalidName(name: String) {
        #expect(JobsGenerator.problem(withTypeName: name) != nil)
    }
}
