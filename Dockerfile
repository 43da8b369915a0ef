# The connector as a container. Build: docker build -t o365-connector .
# Run:   docker run -d --name o365 -v /etc/o365-connector:/etc/o365-connector:ro -v o365-state:/var/lib/o365 \
#          -v /var/log/o365:/var/log/o365 o365-connector
# The connector runs as the image's user node (uid 1000), so the outputs file (chmod 600, holding the secret) must be
# that user's: on the host `chown 1000 /etc/o365-connector/outputs.json && chmod 600 /etc/o365-connector/outputs.json`,
# or hand it over as a secret for that user (Compose: secrets: [{source: outputs, target: /etc/o365-connector/outputs.json,
# uid: "1000", mode: 0400}]). A root-owned 0600 file is refused in one line naming its owner and this user.
# tini is PID 1: it forwards `docker stop`'s SIGTERM to the connector (which flushes, saves its state and exits 0)
# and reaps what exits; bin/o365-connector execs the pinned Node, so the connector is tini's only child.
FROM node:24-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/o365-connector
COPY . .
RUN npm ci && npm cache clean --force
RUN mkdir -p /var/lib/o365 /var/log/o365 && chown node:node /var/lib/o365 /var/log/o365
USER node
ENV O365_OUTPUTS_FILE=/etc/o365-connector/outputs.json
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/o365-connector/bin/o365-connector"]
CMD ["run", "--state", "/var/lib/o365", "--sink", "file:/var/log/o365/audit.ndjson"]
