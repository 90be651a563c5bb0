# One image with Koerier's four binaries: the worker, the API (koerier-api), the command
# line (starter) and the Digipoort simulator. docker-compose.yml runs each from it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/worker ./worker \
 && CGO_ENABLED=0 go build -trimpath -o /out/koerier-api ./api/cmd/koerier-api \
 && CGO_ENABLED=0 go build -trimpath -o /out/starter ./starter \
 && CGO_ENABLED=0 go build -trimpath -o /out/digipoort-simulator ./digipoort/cmd/digipoort-simulator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /koerier/
ENV PATH=/koerier
ENTRYPOINT []
CMD ["/koerier/worker"]
