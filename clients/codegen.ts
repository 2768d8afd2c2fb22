// GraphQL Code Generator: typed documents for every operation in src/operations/*.graphql,
// generated from the server's SDL (../schema.graphql). Codegen validates each document
// against the schema, so a schema change that breaks an operation fails `npm run codegen`.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../schema.graphql",
  documents: ["src/operations/**/*.graphql"],
  ignoreNoDocuments: false,
  emitLegacyCommonJSImports: false,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: {
        // Plain typed results (no useFragment unmasking) suit a non-React client.
        fragmentMasking: false,
      },
      config: {
        scalars: { DateTime: "string" },
        enumsAsTypes: true,
        useTypeImports: true,
        strictScalars: true,
      },
    },
  },
};

export default config;
