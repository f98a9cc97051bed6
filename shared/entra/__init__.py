"""Microsoft Graph reads (msgraph-sdk): assignments, users, group members, delta rounds."""
