process.stdout.write('o365-connector: not built yet\n');
