# The one image of the production shape (docker-compose.yml): the api, the feeds and social
# workers, beat and flower all run it with different commands.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# pyproject.toml names README.md as the long description, so the build needs it.
COPY pyproject.toml README.md ./
COPY config ./config
COPY syndication ./syndication
COPY workers ./workers
RUN pip install '.[postgres,flower]'

# Run as an unprivileged user. /data is created here, owned by that user, so a fresh named
# volume mounted on it starts with the same owner.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin syndication \
    && mkdir -p /data/feeds /etc/syndication \
    && chown -R syndication:syndication /data
USER syndication
# Run from the data folder, not /app: nothing should import the copied sources over the installed package.
WORKDIR /data
ENV SYNDICATION_DATA_DIR=/data \
    SYNDICATION_FEEDS_DIR=/data/feeds

EXPOSE 8000 5555
CMD ["syndication", "serve", "--host", "0.0.0.0", "--port", "8000"]
