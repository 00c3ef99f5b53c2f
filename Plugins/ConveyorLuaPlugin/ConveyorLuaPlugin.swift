import Foundation
import PackagePlugin

/// Embeds the package's top-level `lua/` folder into the target it is applied
/// to, as `LuaScripts.generated.swift`.
///
/// `lua/` stays the single source of truth: nothing is copied into `Sources/`,
/// and any edit to a script or include reruns the embedder on the next build.
@main
struct ConveyorLuaPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let luaDirectory = context.package.directoryURL.appending(path: "lua", directoryHint: .isDirectory)
        let files = try Self.luaFiles(in: luaDirectory)
        let output = context.pluginWorkDirectoryURL.appending(path: "LuaScripts.generated.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(files.count) Lua file(s) from lua/ into \(target.name)",
                executable: try context.tool(named: "ConveyorLuaEmbedder").url,
                arguments: [luaDirectory.path(percentEncoded: false), output.path(percentEncoded: false)],
                inputFiles: files,
                outputFiles: [output]
            )
        ]
    }

    private static func luaFiles(in directory: URL) throws -> [URL] {
        var files: [URL] = []
        for folder in [directory, directory.appending(path: "includes", directoryHint: .isDirectory)] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path(percentEncoded: false))) ?? []
            files += names.filter { $0.hasSuffix(".lua") }.sorted().map { folder.appending(path: $0) }
        }
        return files
    }
}
